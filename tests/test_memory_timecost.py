"""fieldnotes.memory.timecost: recomputation's step time (measured) and communication time (a model)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from fieldnotes.memory import communication_elements
from fieldnotes.memory.runs import RunSpec
from fieldnotes.memory.timecost import communication_seconds, recompute_step_seconds

PSI = 7_069_016_064


def test_communication_seconds_is_bytes_over_bandwidth():
    # data parallelism on 4 GPUs all-reduces 2 (N-1)/N psi 16-bit elements: 3 psi bytes
    got = communication_seconds(PSI, stage=0, n_gpus=4, micro_batches=1, bytes_per_second=25e9)
    assert got == pytest.approx(3 * PSI / 25e9, rel=1e-12)
    zero3 = communication_seconds(PSI, stage=3, n_gpus=4, micro_batches=4, bytes_per_second=25e9)
    elements = communication_elements(PSI, stage=3, n_gpus=4, micro_batches=4)
    assert zero3 == pytest.approx(float(2 * elements / Fraction(25e9)), rel=1e-12)
    assert zero3 > got
    for bad in [0, -1e9, float("inf"), float("nan"), True, "25e9"]:
        with pytest.raises(ValueError, match="bytes_per_second"):
            communication_seconds(PSI, stage=0, n_gpus=4, micro_batches=1, bytes_per_second=bad)


def test_recompute_step_seconds_times_both_modes_interleaved():
    spec = RunSpec(hidden=32, layers=2, heads=2, vocab=100, seq_len=8, micro_batch=2)
    table = recompute_step_seconds(spec, repeats=2)
    assert sorted(table.recompute.unique()) == ["full", "none"]
    assert len(table) == 4 and (table.seconds > 0).all()
    with pytest.raises(ValueError, match="repeats"):
        recompute_step_seconds(spec, repeats=0)


def test_one_thread_restores_the_thread_count():
    import torch

    from fieldnotes.memory.timecost import one_thread

    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
