"""fieldnotes.memory.calculator: the static budget table and the widget."""

from __future__ import annotations

import pytest

from fieldnotes.memory import GB, model_states
from fieldnotes.memory.calculator import budget_rows, memory_calculator

SETTING = dict(
    trainable_b=7.5,
    frozen_b=0.0,
    n_gpus=64,
    stage=3,
    precision="bf16 mixed (Adam)",
    offload=None,
    seq_len=1024,
    micro_batch=1,
    recompute="full",
    layers=32,
    hidden=4096,
    heads=32,
)


def test_budget_rows_reproduce_the_paper():
    from fieldnotes.memory.saved import layer_activation_bytes

    t = budget_rows(**SETTING)
    states = t.loc["weights", "GB per GPU"] + t.loc["gradients", "GB per GPU"]
    states += t.loc["optimizer states", "GB per GPU"]
    assert states == pytest.approx(model_states(7_500_000_000, stage=3, n_gpus=64).total / GB)
    assert t.loc["activations", "GB per GPU"] == pytest.approx(32 * 2 * 1024 * 4096 / GB)
    assert t.loc["fits GPU?", "GB per GPU"] == "yes"
    off = budget_rows(**{**SETTING, "offload": "optimizer", "n_gpus": 1, "stage": 2})
    assert off.loc["optimizer states", "GB per GPU"] == off.loc["gradients", "GB per GPU"] == 0
    assert off.loc["model states on CPU", "GB per GPU"] == pytest.approx(14 * 7.5)
    # ZeRO-Offload on one GPU: 15 GB of 16-bit weights + activations fit in 40 GiB; full
    # recomputation also holds one layer's full activations (BLOOM's) while it is recomputed
    layer = layer_activation_bytes("bloom", hidden=4096, heads=32, seq_len=1024, micro_batch=1)
    assert off.loc["recomputed layer", "GB per GPU"] == pytest.approx(layer / GB)
    assert off.loc["peak moment", "GB per GPU"] == "first gradient"
    assert off.loc["total on GPU", "GB per GPU"] == pytest.approx(
        15 + (32 * 2 * 1024 * 4096 + layer) / GB
    )
    # BLOOM's vocabulary: 4 bytes per logit and two fp32 gradients of them; ZeRO-3 gathers the
    # largest layer's 16-bit weights; DeepSpeed's default bucket holds 5e8 16-bit elements
    big = budget_rows(**{**SETTING, "vocab": 250_880, "largest_layer_b": 1.0,
                         "bucket_elements": 500_000_000})
    assert big.loc["logits and loss", "GB per GPU"] == pytest.approx(4 * 1024 * 250_880 / GB)
    assert big.loc["loss backward (2 fp32 logit-sized)", "GB per GPU"] == pytest.approx(
        8 * 1024 * 250_880 / GB)
    assert big.loc["gathered largest layer", "GB per GPU"] == pytest.approx(2.0)
    assert big.loc["gradient buckets", "GB per GPU"] == pytest.approx(1.0)
    lines = big.drop(index=["total on GPU", "model states on CPU", "peak moment", "fits GPU?"])
    assert lines["GB per GPU"].astype(float).sum() == pytest.approx(
        big.loc["total on GPU", "GB per GPU"])
    assert off.loc["fits GPU?", "GB per GPU"] == "yes"
    assert budget_rows(**{**SETTING, "n_gpus": 1, "stage": 0}).loc["fits GPU?"].item() == "no"


def test_widget_builds_and_rejects_unknown_settings():
    panel = memory_calculator(n_gpus=4)
    assert len(panel.children) == 2
    with pytest.raises(ValueError, match="unknown"):
        memory_calculator(gpus=4)
