"""fieldnotes.memory.story: the post's attempts, each a training budget."""

from __future__ import annotations

import pytest

from fieldnotes.memory import GB
from fieldnotes.memory.story import attempts_table

PSI = 7_069_016_064


def test_attempts_follow_the_formulas():
    from transformers import BloomConfig

    from fieldnotes.memory import predicted_activation_bytes

    largest = 1_027_604_480
    t = attempts_table(
        PSI,
        layers=30,
        hidden=4096,
        heads=32,
        seq_len=512,
        micro_batch=8,
        lora_params=11_796_480,
        lora_rank=16,
        vocab=250_880,
        tied_params=largest,
    ).set_index("attempt")
    fp32 = t.loc["fp32 Adam, one GPU"]
    bf16 = t.loc["+ mixed precision (bf16)"]
    # fp32 Adam: 4 + 4 + 8 bytes; mixed precision: 2 + 2 + 12: the same 16 bytes per parameter
    for row in (fp32, bf16):
        states = row["weights GB"] + row["gradients GB"] + row["optimizer GB"]
        assert states == pytest.approx(16 * PSI / GB, rel=1e-12)
    # activations are BLOOM's measured ones, in each precision's dtype (fp32 keeps the softmax once)
    bloom = BloomConfig(vocab_size=250_880, hidden_size=4096, n_layer=30, n_head=32)
    for row, dtype in [(fp32, "float32"), (bf16, "bfloat16")]:
        layer = predicted_activation_bytes(bloom, seq_len=512, micro_batch=8, dtype=dtype)
        assert row["activations GB"] == pytest.approx(30 * layer / GB, rel=1e-12)
    # the byte columns add up to the total in every row (the peak moment's terms)
    parts = ["weights GB", "gradients GB", "optimizer GB", "activations GB",
             "logits + loss backward GB", "other working GB"]
    assert (t[parts].sum(axis=1) - t["total GB"]).abs().max() < 1e-9
    # the logits (4 bytes each) and their two fp32 gradients: 12.3 GB at s = 512, b = 8
    assert bf16["logits + loss backward GB"] == pytest.approx(12 * 512 * 8 * 250_880 / GB)
    # LoRA: model states are the frozen weights plus 16 bytes per adapter parameter
    lora = t.loc["+ LoRA + checkpointing"]
    states = lora["weights GB"] + lora["gradients GB"] + lora["optimizer GB"]
    assert abs(states - (2 * PSI + 16 * 11_796_480) / GB) < 1e-9
    assert lora["peak at"] == "backward"
    assert lora["activations GB"] == pytest.approx(30 * 2 * 512 * 8 * 4096 / GB, rel=1e-12)
    # on 40 GiB only LoRA + checkpointing fits
    assert list(t["fits GPU"]) == [False, False, False, False, True, False]
    # checkpointed full fine-tuning peaks in the optimizer step: DeepSpeed's fp32 gradients
    ckpt = t.loc["+ gradient checkpointing"]
    assert ckpt["peak at"] == "optimizer"
    assert ckpt["total GB"] == pytest.approx(20 * PSI / GB)
    # DDP replicates, and its buckets copy every 16-bit gradient once more
    ddp = t.loc["full fine-tune, DDP on 4 GPUs"]
    assert ddp["total GB"] == pytest.approx(ckpt["total GB"] + 2 * PSI / GB)


def test_largest_micro_batch_for_lora_without_checkpointing():
    from fieldnotes.memory.story import largest_micro_batch

    shape = dict(layers=30, hidden=4096, heads=32, seq_len=512, lora_params=11_796_480,
                 lora_rank=16, vocab=250_880)
    attempt = "+ LoRA, no checkpointing"
    gpu = 40 * 2**30 / GB
    b = largest_micro_batch(PSI, attempt, gpu_gb=gpu, **shape)
    # 14.3 GB of states; BLOOM's 30 LoRA-adapted layers keep 2.90 GB per sample at 512 tokens
    # (frozen matmuls keep no input: not the trained layer's 3.53 GB), the logits and the loss's
    # backward 1.54 GB more; with the 4.62 GB headroom 5 samples fit, with none 6
    assert b == 5
    assert largest_micro_batch(PSI, attempt, gpu_gb=gpu, headroom_gb=0, **shape) == 6
    for batch, fits in [(b, True), (b + 1, False)]:
        row = attempts_table(PSI, micro_batch=batch, gpu_gb=gpu, **shape).set_index("attempt")
        assert bool(row.loc[attempt, "fits GPU"]) is fits
    assert largest_micro_batch(PSI, "fp32 Adam, one GPU", gpu_gb=gpu, **shape) == 0
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
    from fieldnotes.memory.story import plan_micro_batches, usable_bytes

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

        usable = usable_bytes(40.0)  # 40 GB less the headroom
        assert total(b) <= usable and (b == 64 or total(b + 1) > usable)
    with pytest.raises(TypeError, match="micro_batch"):
        plan_micro_batches(plans, micro_batch=2, **act)


def test_margin_text_says_which_side_of_the_gpu():
    from fieldnotes.memory.story import margin_text

    gpu = 42_949_672_960 / GB
    assert margin_text(35 * 10**9, gpu) == (
        "leaves 3.3 GB of the 42.9 GB free beside the 4.62 GB headroom")
    assert margin_text(40 * 10**9, gpu) == (
        "needs 1.7 GB more than the 42.9 GB less the 4.62 GB headroom")
    assert margin_text(40 * 10**9, gpu, headroom_gb=0).startswith("leaves 2.9 GB")
    for bad in [dict(gpu_gb=0), dict(gpu_gb=float("nan")), dict(gpu_gb=40.0, headroom_gb=-1)]:
        with pytest.raises(ValueError, match="gpu_gb|headroom_gb"):
            margin_text(1, **{"gpu_gb": 40.0, **bad})


def test_exercise_4_is_the_attempts_tables_largest_micro_batch():
    from fieldnotes.memory.story import lora_exercise_micro_batch

    # 40 GiB less the 4.62 GB headroom, 512 tokens, rank 16 (the page's solution); 6 with no
    # headroom, where the trained layer's activations (the review's finding) gave 5
    assert lora_exercise_micro_batch() == 5
    assert lora_exercise_micro_batch(headroom_gb=0) == 6
    assert lora_exercise_micro_batch(gpu_memory_gib=80.0) > 5
    assert lora_exercise_micro_batch(seq_len=2048) < 5


def test_headroom_is_what_the_committed_gpu_step_left_free():
    import json

    from fieldnotes.memory.gpucheck import find_gpu_check
    from fieldnotes.memory.story import HEADROOM_GB, usable_bytes

    path = find_gpu_check()
    if path is None:
        pytest.skip("no committed GPU check")
    data = json.loads(path.read_text())
    assert round((data["gpu_memory_bytes"] - data["peak_bytes"]) / GB, 2) == HEADROOM_GB
    assert usable_bytes(40.0) == int((40.0 - HEADROOM_GB) * GB)
    with pytest.raises(ValueError, match="headroom_gb"):
        usable_bytes(40.0, float("inf"))


def test_verdicts_leave_the_headroom():
    from fieldnotes.memory import Part
    from fieldnotes.memory.story import HEADROOM_GB, plans_table

    # a plan whose budget lies between the GPU less the headroom and the whole GPU
    plans = {"weights only": [Part("llm", 19_000_000_000, "frozen")]}  # 38.0 GB of bf16 weights
    t = plans_table(plans, settings=((0, 1),), gpu_gb=40.0)
    assert 40.0 - HEADROOM_GB < t.loc["weights only", "1 GPU GB"] <= 40.0
    assert not t.loc["weights only", "1 GPU fits"]
    assert plans_table(plans, settings=((0, 1),), gpu_gb=40.0, headroom_gb=0).loc["weights only", "1 GPU fits"]
