"""fieldnotes.memory.checkpoint: a DeepSpeed ZeRO checkpoint saved, loaded and consolidated."""

from __future__ import annotations

import pytest

from fieldnotes.memory import RunSpec, count_parameters
from fieldnotes.memory.checkpoint import measure_checkpoint
from fieldnotes.memory.runs import small_bloom_config

SPEC = RunSpec(hidden=64, layers=2, heads=2, vocab=500, seq_len=8, micro_batch=2, steps=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="stage"):
        measure_checkpoint(SPEC, stage=0)
    with pytest.raises(TypeError, match="RunSpec"):
        measure_checkpoint({"hidden": 64})


@pytest.mark.slow
def test_sharded_and_consolidated_bytes():
    row = measure_checkpoint(SPEC, stage=2, world_size=2).iloc[0]
    psi = count_parameters(small_bloom_config(SPEC))
    # the consolidated file: every fp32 weight once (the tied embedding once), plus its header
    assert 4 * psi <= row.consolidated_bytes < 4 * psi + 20_000
    # the shards: 16-bit weights + fp32 master + two moments (14 bytes per parameter) + metadata
    assert 14 * psi <= row.sharded_bytes < 14 * psi + 200_000
    assert row.sharded_files >= 3 and row.sharded_save_s > 0 and row.consolidate_s > 0
