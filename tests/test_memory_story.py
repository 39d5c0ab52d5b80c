"""fieldnotes.memory.story: the post's attempts, each a training budget."""

from __future__ import annotations

import pytest

from fieldnotes.memory import GB
from fieldnotes.memory.story import attempts_table

PSI = 7_069_016_064


def test_attempts_follow_the_formulas():
    t = attempts_table(
        PSI,
        layers=30,
        hidden=4096,
        heads=32,
        seq_len=512,
        micro_batch=8,
        lora_params=11_796_480,
        vocab=250_880,
    ).set_index("attempt")
    fp32 = t.loc["fp32 Adam, one GPU"]
    bf16 = t.loc["+ mixed precision (bf16)"]
    # fp32 Adam: 4 + 4 + 8 bytes; mixed precision: 2 + 2 + 12: the same 16 bytes per parameter
    for row in (fp32, bf16):
        states = row["weights GB"] + row["gradients GB"] + row["optimizer GB"]
        assert states == pytest.approx(16 * PSI / GB, rel=1e-12)
    # mixed precision halves the activations; full recomputation keeps 2sbh per layer
    assert fp32["activations GB"] == 2 * bf16["activations GB"]
    ckpt = t.loc["+ gradient checkpointing"]
    assert ckpt["activations GB"] == pytest.approx(30 * 2 * 512 * 8 * 4096 / GB, rel=1e-12)
    # LoRA: model states are the frozen weights plus 16 bytes per adapter parameter
    lora = t.loc["+ LoRA + checkpointing"]
    states = lora["weights GB"] + lora["gradients GB"] + lora["optimizer GB"]
    assert abs(states - (2 * PSI + 16 * 11_796_480) / GB) < 1e-9
    # on 40 GiB, with BLOOM's 4.1 GB of logits, only LoRA + checkpointing fits
    assert list(t["fits GPU"]) == [False, False, False, False, True, False]
    assert ckpt["total GB"] == pytest.approx(
        (
            16 * PSI
            + 30 * 2 * 512 * 8 * 4096
            + 34 * 512 * 8 * 4096
            + 5 * 32 * 512**2 * 8
            + 4 * 512 * 8 * 250_880
        )
        / GB
    )
    # DDP replicates: per GPU the same as one GPU
    ddp = t.loc["full fine-tune, DDP on 4 GPUs"]
    assert ddp["total GB"] == ckpt["total GB"]


def test_largest_micro_batch_for_lora_without_checkpointing():
    from fieldnotes.memory.story import largest_micro_batch

    shape = dict(layers=30, hidden=4096, heads=32, seq_len=512, lora_params=11_796_480)
    attempt = "+ LoRA, no checkpointing"
    b = largest_micro_batch(PSI, attempt, gpu_gb=40.0, **shape)
    # 2Ψ + 16·lora = 14.3 GB of states; 30 layers at 512 tokens keep 3.40 GB per sample
    assert b == 7
    for batch, fits in [(b, True), (b + 1, False)]:
        row = attempts_table(PSI, micro_batch=batch, gpu_gb=40.0, **shape).set_index("attempt")
        assert bool(row.loc[attempt, "fits GPU"]) is fits
    assert largest_micro_batch(PSI, "fp32 Adam, one GPU", gpu_gb=40.0, **shape) == 0
    with pytest.raises(ValueError, match="attempt"):
        largest_micro_batch(PSI, "no such attempt", **shape)
    with pytest.raises(TypeError, match="micro_batch"):
        largest_micro_batch(PSI, attempt, micro_batch=2, **shape)


def test_plans_table_adds_up_the_budgets():
    from fieldnotes.memory import Part, training_budget
    from fieldnotes.memory.story import plans_table

    plans = {"all": [Part("llm", PSI)], "frozen": [Part("llm", PSI, "frozen")]}
    act = dict(
        activation_layers=30, seq_len=512, micro_batch=8, hidden=4096, heads=32, recompute="full"
    )
    t = plans_table(plans, gpu_gb=40.0, **act)
    assert list(t.columns) == [
        "trainable",
        "1 GPU GB",
        "1 GPU fits",
        "ZeRO-3 x4 GB",
        "ZeRO-3 x4 fits",
        "ZeRO-3 x8 GB",
        "ZeRO-3 x8 fits",
    ]
    assert t.loc["all", "trainable"] == PSI and t.loc["frozen", "trainable"] == 0
    expected = training_budget(plans["all"], stage=3, n_gpus=4, **act).total / GB
    assert t.loc["all", "ZeRO-3 x4 GB"] == pytest.approx(expected)
    # 16Ψ = 113 GB does not fit one 40 GB GPU; 16Ψ/4 + activations does
    assert not t.loc["all", "1 GPU fits"] and t.loc["all", "ZeRO-3 x4 fits"]
    assert t.loc["frozen", "1 GPU fits"]


def test_an_a100_40gb_holds_40_gib():
    from fieldnotes.memory.story import A100_40GB

    assert A100_40GB * GB == 40 * 2**30 == 42_949_672_960


def test_plan_micro_batches_is_the_largest_fitting_batch():
    from fieldnotes.memory import Part, training_budget
    from fieldnotes.memory.story import plan_micro_batches

    plans = {"all": [Part("llm", PSI)], "frozen": [Part("llm", PSI, "frozen")]}
    act = dict(activation_layers=30, seq_len=512, hidden=4096, heads=32, recompute="none")
    t = plan_micro_batches(plans, gpu_gb=40.0, limit=64, **act)
    assert list(t.columns) == ["1 GPU", "ZeRO-3 x4", "ZeRO-3 x8"]
    assert t.loc["all", "1 GPU"] == 0  # 16 psi alone does not fit
    for plan, stage, n, label in [("all", 3, 8, "ZeRO-3 x8"), ("frozen", 0, 1, "1 GPU")]:
        b = int(t.loc[plan, label])
        assert b >= 1

        def total(mb, plan=plan, stage=stage, n=n):
            return training_budget(plans[plan], stage=stage, n_gpus=n, micro_batch=mb, **act).total

        assert total(b) <= 40.0 * GB and (b == 64 or total(b + 1) > 40.0 * GB)
    with pytest.raises(TypeError, match="micro_batch"):
        plan_micro_batches(plans, micro_batch=2, **act)
