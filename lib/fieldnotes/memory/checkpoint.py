"""What a training checkpoint holds and costs: a DeepSpeed save and load of the measured model.

:func:`measure_checkpoint` trains the small model one optimizer step under DeepSpeed ZeRO on CPU
ranks, then times ``engine.save_checkpoint`` (every rank writes its own shard of the fp32 master
weights and Adam moments beside the 16-bit weights) and ``engine.load_checkpoint``, and on rank 0
the consolidation DeepSpeed offers for other world sizes and for inference
(``get_fp32_state_dict_from_zero_checkpoint``: the fp32 weights gathered from every shard), written
and read back as one safetensors file. Seconds are wall-clock on this machine's disk; bytes are the
files' sizes.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def _checkpoint_job(rank: int, world_size: int, spec_dict: dict, stage: int, folder: str) -> dict:
    """Body of one rank for :func:`measure_checkpoint` (module-level for spawned processes)."""
    import deepspeed
    import torch.distributed as dist
    from transformers import BloomForCausalLM

    from fieldnotes.memory.measure import _start_rank
    from fieldnotes.memory.runs import RunSpec, deepspeed_config, small_bloom_config, token_batches

    _start_rank()
    spec = RunSpec(**spec_dict)
    model = BloomForCausalLM(small_bloom_config(spec))
    engine, *_ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=deepspeed_config(spec, stage)
    )
    for x in token_batches(spec, rank, 2):
        engine.backward(engine(input_ids=x, labels=x).loss)
        engine.step()
    sharded = Path(folder) / "sharded"
    dist.barrier()
    t0 = time.perf_counter()
    engine.save_checkpoint(str(sharded), tag="step")
    dist.barrier()
    save_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine.load_checkpoint(str(sharded), tag="step")
    dist.barrier()
    load_s = time.perf_counter() - t0
    out = {"rank": rank, "sharded_save_s": save_s, "sharded_load_s": load_s}
    if rank == 0:
        out.update(_consolidate(sharded, Path(folder) / "consolidated.safetensors"))
        out["sharded_bytes"] = _folder_bytes(sharded)
        out["sharded_files"] = sum(1 for f in sharded.rglob("*") if f.is_file())
    return out


def _consolidate(sharded: Path, target: Path) -> dict:
    """Gather the fp32 weights from every shard into one safetensors file, timed both ways."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from safetensors.torch import load_file, save_file

    t0 = time.perf_counter()
    # DeepSpeed prints its progress and a tqdm bar; the measurement's caller shows its own result
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        state = get_fp32_state_dict_from_zero_checkpoint(str(sharded), tag="step")
    # the tensors are views of shared buffers, and a tied embedding appears under both of its
    # names: keep each distinct tensor once, as its own copy (safetensors refuses shared memory)
    seen, unique = set(), {}
    for name, tensor in state.items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            unique[name] = tensor.clone()
    state = unique
    save_file(state, str(target))
    consolidate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_file(str(target))
    load_s = time.perf_counter() - t0
    return {
        "consolidate_s": consolidate_s,
        "consolidated_load_s": load_s,
        "consolidated_bytes": target.stat().st_size,
    }


def measure_checkpoint(spec, *, stage: int = 2, world_size: int = 2, timeout_s: float = 900.0):
    """Save, load and consolidate a DeepSpeed ZeRO-``stage`` checkpoint of ``spec``'s model on
    ``world_size`` CPU ranks: a one-row DataFrame of bytes and seconds (the slowest rank's)."""
    import tempfile

    import pandas as pd

    from fieldnotes.distributed import run_on_cpu_ranks
    from fieldnotes.memory.runs import RunSpec
    from fieldnotes.memory.zero import check_count

    if not isinstance(spec, RunSpec):
        raise TypeError(f"spec must be a RunSpec, got {type(spec).__name__}")
    if stage not in (1, 2, 3):
        raise ValueError(f"stage must be 1, 2 or 3 (a ZeRO checkpoint), got {stage!r}")
    world_size = check_count("world_size", world_size, minimum=1)
    from dataclasses import asdict

    with tempfile.TemporaryDirectory(prefix="fieldnotes-ckpt-") as folder:
        ranks = run_on_cpu_ranks(
            _checkpoint_job, world_size, asdict(spec), stage, folder, timeout_s=timeout_s
        )
    row = dict(ranks[0])
    row.pop("rank")
    row["sharded_save_s"] = max(r["sharded_save_s"] for r in ranks)
    row["sharded_load_s"] = max(r["sharded_load_s"] for r in ranks)
    row["stage"] = stage
    row["world_size"] = world_size
    return pd.DataFrame([row])


__all__ = ["measure_checkpoint"]
