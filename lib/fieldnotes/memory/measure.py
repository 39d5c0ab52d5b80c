"""Measure what a real sharded training run holds: DeepSpeed ZeRO 0-3, PyTorch ZeRO-1 and FSDP.

A small BLOOM-style causal language model is trained for a few steps by ``world_size`` CPU processes
(gloo; see :mod:`fieldnotes.distributed`) under each engine (:mod:`~fieldnotes.memory.runs`). Each
rank then traces one more optimizer step of two micro-batches and reports

- its model states in the middle of that step (after the first micro-batch's backward), read from
  the engine and optimizer objects (:mod:`~fieldnotes.memory.held`) by part: ``parameters`` (16-bit
  for DeepSpeed, fp32 for PyTorch's engines), ``gradients`` being accumulated, ``master`` (fp32
  master weights, DeepSpeed's mixed precision only) and ``moments`` (Adam's two moments), each
  beside the paper's formula (:class:`~fieldnotes.memory.engines.EngineModel`) and the bytes the
  engine's layout explains (:mod:`~fieldnotes.memory.explain`);
- the live tensor bytes of the whole step over time, by category
  (:mod:`~fieldnotes.memory.timeline`), and the peak RSS of the process (``VmHWM``, reset before
  each configuration where Linux allows).

Engines: ``deepspeed-0`` .. ``deepspeed-3`` (bf16 mixed precision, Adam, K = 12), ``torch-zero1``
(DDP + ``ZeroRedundancyOptimizer``, fp32, K = 8) and ``torch-fsdp`` (FSDP2 ``fully_shard`` per
block, fp32, K = 8).
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass

from fieldnotes.memory.engines import ENGINE_MODEL, ENGINES, PARTS
from fieldnotes.memory.runs import RunSpec, small_bloom_config
from fieldnotes.memory.zero import check_count


@dataclass
class Measurement:
    """A measured run: ``states`` (one row per engine, rank and part) and ``timeline`` (one row per
    allocation or free of the traced step, per engine and rank; bytes per category)."""

    states: object  # pandas DataFrame
    timeline: object  # pandas DataFrame


@dataclass
class _RankResult:
    rows: list
    timeline: object


def _peak_rss_reset() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB; 0 where absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _explained(engine_name: str, run) -> dict:
    from fieldnotes.memory.explain import explain_deepspeed, explain_fsdp, explain_torch_zero1

    wrapped, optimizer, model = run.keep
    if engine_name.startswith("deepspeed-"):
        return explain_deepspeed(wrapped, optimizer, ENGINE_MODEL[engine_name].stage)
    if engine_name == "torch-zero1":
        return explain_torch_zero1(optimizer.optim)
    import torch.distributed as dist

    return explain_fsdp(model, dist.get_world_size())


def _one_configuration(spec: RunSpec, engine_name: str, rank: int, world_size: int) -> _RankResult:
    """Train one engine on this rank: its model-state rows (one per part) and step timeline."""
    import torch
    from transformers import BloomForCausalLM

    from fieldnotes.memory.runs import run_deepspeed, run_torch

    gc.collect()
    reset = _peak_rss_reset()
    rss_start = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    model = ENGINE_MODEL[engine_name]
    if engine_name.startswith("deepspeed-"):
        run = run_deepspeed(spec, model.stage)
    else:
        run = run_torch(spec, engine_name, world_size)
    counted = run.counted
    explained = _explained(engine_name, run)
    peak = _rss_kib("VmHWM")
    rss_now = _rss_kib("VmRSS")
    seconds = time.perf_counter() - t0
    timeline = run.tracker.timeline()
    sent = collective_payloads(run.tracker.collectives())
    # the first step carries each engine's one-time set-up: leave it out where there are others
    run_steps_s = list(run.step_seconds)
    step_seconds = sorted(run_steps_s[1:] or run_steps_s)
    timeline.insert(0, "rank", rank)
    timeline.insert(0, "engine", engine_name)
    losses = run.losses
    del run
    gc.collect()
    with torch.device("meta"):
        n_params = sum(p.numel() for p in BloomForCausalLM(small_bloom_config(spec)).parameters())
    formula = model.formula_bytes(n_params, world_size)
    rows = []
    for part in PARTS:
        elements, nbytes = counted[part]
        exp = explained.get(part)
        rows.append(
            {
                "engine": engine_name,
                "stage": model.stage,
                "rank": rank,
                "part": part,
                "measured_elements": elements,
                "measured_bytes": nbytes,
                "formula_bytes": formula[part],
                "explained_bytes": formula[part] if exp is None else exp.nbytes,
                "explanation": "formula" if exp is None else exp.why,
                "params": n_params,
                "peak_rss_MiB": peak / 1024,
                "rss_at_start_MiB": rss_start / 1024,
                "rss_at_measure_MiB": rss_now / 1024,
                "peak_rss_is_per_config": reset,
                "final_loss": losses[-1],
                "seconds": seconds,
                "step_seconds": step_seconds[len(step_seconds) // 2] if step_seconds else None,
                "step_seconds_min": step_seconds[0] if step_seconds else None,
                "step_seconds_max": step_seconds[-1] if step_seconds else None,
                "timed_steps": len(step_seconds),
                "first_step_timed": len(run_steps_s) == 1,
                **sent,
            }
        )
    return _RankResult(rows, timeline)


def _start_rank() -> None:
    """Quiet DeepSpeed and join the gloo group (in a rank process)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
    import deepspeed
    import deepspeed.ops

    deepspeed.utils.logger.setLevel(logging.ERROR)
    # DeepSpeed 0.19.8's init_distributed builds its shm_comm op, which only inference_all_reduce
    # uses, under a lock file in the shared TORCH_EXTENSIONS_DIR; a rank killed while holding it
    # leaves the lock behind and every later run (and a concurrent one) waits on it forever.
    # Training never calls the op, so mark it unavailable (__compatible_ops__ is that version's
    # table of usable ops) and nothing is built or locked.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    deepspeed.init_distributed(dist_backend="gloo", verbose=False)


COLLECTIVE_KINDS = {
    "reduce": ("allreduce", "reduce_scatter", "reduce"),
    "gather": ("allgather", "broadcast"),
}


def collective_payloads(collectives) -> dict[str, int]:
    """Payload bytes of a traced step's collectives by kind: ``reduce_payload_bytes`` (all-reduce,
    reduce-scatter, reduce) and ``gather_payload_bytes`` (all-gather, broadcast); ``collectives``
    is :meth:`~fieldnotes.memory.timeline.LiveBytes.collectives`' table."""
    out = {}
    for kind, prefixes in COLLECTIVE_KINDS.items():
        ops = collectives["op"].str.lstrip("_")
        mask = ops.str.startswith(prefixes)
        out[f"{kind}_payload_bytes"] = int(collectives.loc[mask, "payload_bytes"].sum())
    return out


def _rank_job(rank: int, world_size: int, spec_dict: dict, engines: list[str]) -> list:
    """Body of one rank (module-level so that spawned processes can import it)."""
    _start_rank()
    spec = RunSpec(**spec_dict)
    return [_one_configuration(spec, name, rank, world_size) for name in engines]


def _peaks_job(rank: int, world_size: int, jobs: list, cross_check: bool = False) -> list[dict]:
    """Body of one rank for :func:`measure_peaks`: the traced step's peak of each (spec, engine)."""
    from fieldnotes.memory.runs import run_deepspeed, run_torch
    from fieldnotes.memory.timeline import CATEGORIES, peak_row

    _start_rank()
    rows = []
    for run_id, (spec_dict, name) in enumerate(jobs):
        spec = RunSpec(**spec_dict)
        gc.collect()
        if name.startswith("deepspeed-"):
            run = run_deepspeed(spec, ENGINE_MODEL[name].stage, cross_check=cross_check)
        else:
            run = run_torch(spec, name, world_size, cross_check=cross_check)
        at_peak = peak_row(run.tracker.timeline())
        row = {"spec": spec_dict, "engine": name, "run": run_id, "rank": rank}
        row["peak_bytes"] = int(at_peak["total"])
        row["peak_phase"] = at_peak["phase"]
        row.update({c: int(at_peak[c]) for c in CATEGORIES})
        if cross_check:
            row["memtracker_peak_bytes"] = run.memtracker_peak
        rows.append(row)
        del run
    return rows


def measure_zero(
    spec: RunSpec | None = None,
    *,
    engines=ENGINES,
    world_size: int = 2,
    fresh_processes: bool = True,
    timeout_s: float = 1200.0,
    progress: bool = True,
) -> Measurement:
    """Train the small model under each engine on ``world_size`` CPU ranks and trace one step.

    ``states`` has one row per engine, rank and part: measured elements and bytes, the formula's
    bytes, their ratio, the explained bytes, the peak RSS (MiB), the last loss, the median
    wall-clock seconds of the untraced optimizer steps (``step_seconds``, over ``timed_steps``; their
    fastest and slowest, ``step_seconds_min`` and ``step_seconds_max``), how the ranks were started
    (``fresh_processes``) and
    the payload bytes of the traced step's collectives (:func:`collective_payloads`); the first
    step, which carries each engine's one-time set-up, is timed only when it is the only one. ``timeline`` has
    the traced step's live bytes per category (:data:`fieldnotes.memory.timeline.CATEGORIES`).
    With ``fresh_processes`` each engine gets its own processes (clean peak RSS, ~10-20 s of
    start-up each); otherwise all engines run one after another in the same processes (faster;
    peak RSS then includes what the allocator kept from earlier engines).
    """
    import pandas as pd

    from fieldnotes.distributed import run_on_cpu_ranks

    spec = spec or RunSpec()
    if not isinstance(spec, RunSpec):
        raise TypeError(f"spec must be a RunSpec, got {type(spec).__name__}")
    engines = list(engines)
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        raise ValueError(f"engines must be a non-empty subset of {ENGINES}, got {engines!r}")
    world_size = check_count("world_size", world_size, minimum=1)
    groups = [[e] for e in engines] if fresh_processes else [engines]
    results: list[_RankResult] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(groups), desc="sharded runs", unit="run")
    for group in groups:
        for per_rank in run_on_cpu_ranks(
            _rank_job, world_size, asdict(spec), group, timeout_s=timeout_s
        ):
            results += per_rank
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    states = pd.DataFrame([row for r in results for row in r.rows])
    states["measured/formula"] = states["measured_bytes"] / states["formula_bytes"].where(
        states["formula_bytes"] > 0
    )
    states["fresh_processes"] = fresh_processes  # peak RSS is per engine only in fresh processes
    timeline = pd.concat([r.timeline for r in results], ignore_index=True)
    return Measurement(states, timeline)


def measure_peaks(jobs, *, world_size: int = 2, timeout_s: float = 1200.0, cross_check: bool = False):
    """The traced step's peak live bytes on each rank for every ``(RunSpec, engine)`` in ``jobs``,
    all in one process group (one start-up; a pair listed twice is measured twice).

    A DataFrame with ``spec`` (the RunSpec), ``engine``, ``run`` (the pair's index in ``jobs``),
    ``rank``, ``peak_bytes``, ``peak_phase`` and the bytes of each tracker category at the peak
    (:data:`fieldnotes.memory.timeline.CATEGORIES`), as :func:`fieldnotes.memory.scoreboard.estimator_table` takes.
    With ``cross_check`` each traced step also runs inside PyTorch's ``MemTracker``, whose peak
    is the ``memtracker_peak_bytes`` column.
    """
    import pandas as pd

    from fieldnotes.distributed import run_on_cpu_ranks

    jobs = list(jobs)
    if not jobs:
        raise ValueError("jobs must list at least one (RunSpec, engine) pair")
    for i, job in enumerate(jobs):
        if not (isinstance(job, tuple) and len(job) == 2 and isinstance(job[0], RunSpec)):
            raise ValueError(f"jobs[{i}] must be a (RunSpec, engine) pair, got {job!r}")
        if job[1] not in ENGINES:
            raise ValueError(f"jobs[{i}]: engine must be one of {ENGINES}, got {job[1]!r}")
    world_size = check_count("world_size", world_size, minimum=1)
    per_rank = run_on_cpu_ranks(
        _peaks_job, world_size, [(asdict(s), e) for s, e in jobs], cross_check, timeout_s=timeout_s
    )
    table = pd.DataFrame([row for rows in per_rank for row in rows])
    table["spec"] = [RunSpec(**d) for d in table["spec"]]
    return table


def summary_table(states):
    """One row per engine and rank: measured vs formula bytes for each part (MB = 10^6 bytes)."""
    out = states.copy()
    out["measured_MB"] = out["measured_bytes"] / 1e6
    out["formula_MB"] = out["formula_bytes"] / 1e6
    wide = out.pivot_table(
        index=["engine", "rank"],
        columns="part",
        values=["measured_MB", "formula_MB"],
        aggfunc="first",
        sort=False,
    )
    wide = wide.swaplevel(0, 1, axis=1).reindex(columns=list(PARTS), level=0)
    rss = out.groupby(["engine", "rank"], sort=False)["peak_rss_MiB"].first()
    wide[("peak RSS", "MiB")] = rss
    return wide


__all__ = [
    "ENGINES",
    "PARTS",
    "Measurement",
    "RunSpec",
    "measure_peaks",
    "measure_zero",
    "summary_table",
]
