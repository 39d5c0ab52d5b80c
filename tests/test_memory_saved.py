"""fieldnotes.memory.saved: activation bytes measured per architecture, and the fitted model."""

from __future__ import annotations

import weakref

import pytest
import torch

from fieldnotes.memory.saved import (
    ACTIVATION_COEFFICIENTS,
    FIT_SHAPES,
    LORA_COEFFICIENTS,
    _saved_bytes,
    fit_activations,
    predicted_activation_bytes,
    reference_config,
    saved_activation_bytes,
    saved_loss_bytes,
)

UNSEEN = [(48, 3), (96, 1), (160, 2), (200, 4)]  # none of them in FIT_SHAPES


class Chain(torch.nn.Module):
    """Four sin() calls, each saving its own freshly made 1000-float input, and a Linear."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1000, 1000, bias=False)
        self.last = None

    def forward(self, input_ids):
        y = input_ids.float().requires_grad_()
        for _ in range(4):
            y = (y * 2).sin()  # mul by a scalar saves nothing; sin saves its input
        self.last = weakref.ref(y)
        return self.linear(y)  # saves y (already counted) and its weight (a parameter)


def test_distinct_storages_counted_once_and_nothing_kept_alive():
    m = Chain()
    ids = torch.ones(1, 1000, dtype=torch.long)
    # each sin input is a new storage; freed addresses are not reused while held; weight excluded
    assert _saved_bytes(m, input_ids=ids) == 5 * 4000
    assert m.last() is None  # no saved tensor outlives the call


@pytest.mark.parametrize("model_type, dtype", sorted(ACTIVATION_COEFFICIENTS))
def test_coefficients_are_the_fit_of_the_measurement(model_type, dtype):
    fit = fit_activations(reference_config(model_type), FIT_SHAPES, dtype=dtype)
    got = (fit.alpha, fit.beta)
    assert got == pytest.approx(ACTIVATION_COEFFICIENTS[(model_type, dtype)], abs=1e-6)
    assert fit.table().residual.abs().max() < 1e-9


@pytest.mark.parametrize("model_type", ["bloom", "gpt2"])
@pytest.mark.parametrize("hidden, heads", [(128, 4), (192, 6)])
def test_prediction_within_2_percent_at_unseen_shapes(model_type, hidden, heads):
    cfg = reference_config(model_type, hidden=hidden, heads=heads)
    for s, b in UNSEEN:
        measured = saved_activation_bytes(cfg, seq_len=s, micro_batch=b)
        predicted = predicted_activation_bytes(cfg, seq_len=s, micro_batch=b)
        assert predicted == pytest.approx(measured, rel=0.02), (s, b)


def test_fp32_bloom_prediction_at_unseen_shapes():
    # the fp32 coefficients (PyTorch's fp32 engines) at a wider config and shapes the fit never saw
    cfg = reference_config("bloom", hidden=192, heads=6)
    for s, b in UNSEEN:
        measured = saved_activation_bytes(cfg, seq_len=s, micro_batch=b, dtype="float32")
        predicted = predicted_activation_bytes(cfg, seq_len=s, micro_batch=b, dtype="float32")
        assert predicted == pytest.approx(measured, rel=0.02), (s, b)


def test_architectures_differ_from_korthikanti():
    # BLOOM (no dropout, fp32 softmax): 32·sbh + 6·as²b, not GPT-with-dropout's 34·sbh + 5·as²b
    bloom, gpt2 = (ACTIVATION_COEFFICIENTS[(t, "bfloat16")] for t in ("bloom", "gpt2"))
    assert round(bloom[0]) == 32 and bloom[1] == 6
    assert gpt2[1] != 5


def test_full_recomputation_saves_the_layer_input():
    for model_type in ("bloom", "gpt2"):
        cfg = reference_config(model_type)
        got = saved_activation_bytes(cfg, seq_len=64, micro_batch=2, recompute="full")
        assert got == 2 * 64 * 2 * 128
        assert predicted_activation_bytes(cfg, seq_len=64, micro_batch=2, recompute="full") == got


@pytest.mark.parametrize("model_type, dtype", sorted(LORA_COEFFICIENTS))
def test_lora_coefficients_are_the_fit_of_the_measurement(model_type, dtype):
    fit = fit_activations(reference_config(model_type), FIT_SHAPES, dtype=dtype, lora_rank=8)
    assert (fit.alpha, fit.beta) == pytest.approx(LORA_COEFFICIENTS[(model_type, dtype)], abs=1e-6)
    assert fit.table().residual.abs().max() < 1e-9


def test_lora_layer_saves_about_10_sbh_less_than_a_trained_one():
    # frozen matmuls need no weight gradient, so the MLP's inputs (2·sbh + 8·sbh) are not kept;
    # predicted within 2 % at a wider config, shapes and ranks the fit never saw
    cfg = reference_config("bloom", hidden=192, heads=6)
    for (s, b), r in [(UNSEEN[0], 4), (UNSEEN[2], 16)]:
        lora = saved_activation_bytes(cfg, seq_len=s, micro_batch=b, lora_rank=r)
        predicted = predicted_activation_bytes(cfg, seq_len=s, micro_batch=b, lora_rank=r)
        assert predicted == pytest.approx(lora, rel=0.02), (s, b, r)
    # the adapters' r-wide intermediates (2 bytes x 2 targets x s·b·r) aside, 10·sbh less
    trained = saved_activation_bytes(cfg, seq_len=s, micro_batch=b)
    assert (trained - lora) / (s * b * 192) == pytest.approx(10 - 4 * r / 192, abs=0.1)
    with pytest.raises(ValueError, match="LoRA"):
        saved_activation_bytes(reference_config("gpt2"), seq_len=8, micro_batch=1, lora_rank=4)


def test_dtype_names_and_aliases():
    cfg = reference_config("bloom")
    for alias, name in [("bf16", "bfloat16"), ("fp32", "float32")]:
        assert predicted_activation_bytes(cfg, seq_len=8, micro_batch=2, dtype=alias) == (
            predicted_activation_bytes(cfg, seq_len=8, micro_batch=2, dtype=name))
    for bad in ["half", "float64", None, "FP16"]:
        with pytest.raises(ValueError, match="dtype"):
            predicted_activation_bytes(cfg, seq_len=8, micro_batch=1, dtype=bad)


def test_heads_must_divide_hidden():
    from fieldnotes.memory.saved import layer_activation_bytes

    with pytest.raises(ValueError, match="heads"):
        reference_config("bloom", hidden=130, heads=4)
    with pytest.raises(ValueError, match="heads"):
        layer_activation_bytes("bloom", hidden=130, heads=4, seq_len=8, micro_batch=1)
    cfg = reference_config("bloom")
    cfg.n_head = 3  # 128 % 3 != 0
    with pytest.raises(ValueError, match="heads"):
        predicted_activation_bytes(cfg, seq_len=8, micro_batch=1)


def test_bad_input():
    cfg = reference_config("bloom")
    with pytest.raises(ValueError, match="dtype"):
        saved_activation_bytes(cfg, seq_len=8, micro_batch=1, dtype="int8")
    with pytest.raises(ValueError, match="recompute"):
        predicted_activation_bytes(cfg, seq_len=8, micro_batch=1, recompute="selective")
    with pytest.raises(ValueError, match="seq_len"):
        saved_activation_bytes(cfg, seq_len=0, micro_batch=1)
    with pytest.raises(ValueError, match="fitted"):
        predicted_activation_bytes(cfg, seq_len=8, micro_batch=1, dtype="float16")
    with pytest.raises(TypeError, match="config"):
        saved_activation_bytes({"hidden_size": 4}, seq_len=8, micro_batch=1)
    with pytest.raises(ValueError, match="shapes"):
        fit_activations(cfg, [(8, 1), (16, 2)])
    with pytest.raises(ValueError, match="shapes"):
        fit_activations(cfg, [(8, 1), (8, 2), (8, 3)])


def test_prediction_matches_the_committed_h200_measurement_of_bloomz_layers():
    import json

    from fieldnotes.memory import bloomz_7b1_config
    from fieldnotes.memory.gpucheck import find_gpu_check

    path = find_gpu_check()
    if path is None:
        pytest.skip("no committed GPU check")
    data = json.loads(path.read_text())
    measured = max(data["saved_bytes_per_block"])  # BLOOMZ-7b1 layers on an H200, bf16
    predicted = predicted_activation_bytes(
        bloomz_7b1_config(), seq_len=data["seq"], micro_batch=data["batch"]
    )
    assert predicted == pytest.approx(measured, rel=0.002)


@pytest.mark.parametrize("model_type", ["bloom", "gpt2"])
def test_the_loss_keeps_4_bytes_per_logit(model_type):
    # the fp32 log-softmax output (4 B per logit), the head's bf16 input (2 B), int64 labels and
    # one 4-byte scalar
    s, b, vocab, h = 32, 3, 4096, 128
    got = saved_loss_bytes(reference_config(model_type, vocab=vocab), seq_len=s, micro_batch=b)
    assert got == 4 * s * b * vocab + 2 * s * b * h + 8 * s * b + 4
