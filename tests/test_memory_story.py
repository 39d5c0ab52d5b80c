"""fieldnotes.memory.story: the post's attempts, each a training budget."""

from __future__ import annotations

import pytest

from fieldnotes.memory import GB
from fieldnotes.memory.story import attempts_table

PSI = 7_069_016_064


def test_attempts_follow_the_formulas():
    t = attempts_table(
        PSI, layers=30, hidden=4096, heads=32, seq_len=512, micro_batch=8, lora_params=11_796_480
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
    assert list(t["fits 40 GB"]) == [False, False, False, False, True, False]
    # DDP replicates: per GPU the same as one GPU
    ddp = t.loc["full fine-tune, DDP on 4 GPUs"]
    assert ddp["total GB"] == ckpt["total GB"]
