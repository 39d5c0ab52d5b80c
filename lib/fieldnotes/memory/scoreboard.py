"""Every estimator of a step's peak against the measured peak: the chapter's centrepiece table.

For each measured (model shape, micro-batch, engine) the table sets the largest rank's measured
peak live bytes (:class:`~fieldnotes.memory.timeline.LiveBytes`) beside five predictions, each
with its error (prediction / measurement - 1):

- ``paper``: the ZeRO paper's model states for the engine (:func:`~fieldnotes.memory.peak.paper_peak`);
- ``deepspeed``: DeepSpeed's own estimators, ``estimate_zero2_model_states_mem_needs`` and
  ``estimate_zero3_model_states_mem_needs`` (the functions its ``*_all_live`` and ``*_all_cold``
  printers call; called directly for exact bytes instead of the printed two-decimal GiB), without
  offload. Model states only, and only for the stages they exist for (DeepSpeed ZeRO-2 and ZeRO-3
  rows; empty elsewhere);
- ``accelerate``: ``accelerate estimate-memory``'s "Training using Adam" figure, i.e. the largest
  value of ``accelerate.commands.estimate.estimate_training_usage`` for the model's fp32 size
  (``calculate_maximum_sizes`` of the model built on the meta device from its config: nothing is
  downloaded), in ``"bfloat16"`` for DeepSpeed's runs and ``"float32"`` for PyTorch's. One device,
  no sharding, no activations;
- ``playbook``: the Ultra-Scale Playbook's formula (Tazi et al. 2025): the paper's sharded model
  states plus Korthikanti et al.'s activations, L x sbh(34 + 5as/h) bytes with 16-bit activations
  (doubled for PyTorch's fp32 runs);
- ``chapter``: this chapter's estimator, :func:`~fieldnotes.memory.peak.predicted_peak`.
"""

from __future__ import annotations

ESTIMATORS = ("paper", "deepspeed", "accelerate", "playbook", "chapter")


def deepspeed_bytes(spec, engine: str, world_size: int) -> int | None:
    """DeepSpeed's estimate of one GPU's model states for ``engine`` (bytes; None where it has none)."""
    import os

    from fieldnotes.memory.counting import count_parameters, largest_layer_parameters
    from fieldnotes.memory.engines import ENGINE_MODEL
    from fieldnotes.memory.runs import small_bloom_config

    stage = ENGINE_MODEL[engine].stage
    if not engine.startswith("deepspeed-") or stage < 2:
        return None
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # the estimators need no accelerator
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    config = small_bloom_config(spec)
    params = count_parameters(config)
    if stage == 2:
        return estimate_zero2_model_states_mem_needs(
            params, num_gpus_per_node=world_size, cpu_offload=False
        )[1]
    return estimate_zero3_model_states_mem_needs(
        params,
        largest_layer_parameters(config),
        num_gpus_per_node=world_size,
        cpu_offload=False,
        cpu_offload_params=False,
    )[1]


def accelerate_bytes(spec, engine: str) -> int:
    """accelerate's "Training using Adam" estimate for the measured model (bytes, one device)."""
    import torch
    from accelerate.commands.estimate import calculate_maximum_sizes, estimate_training_usage
    from transformers import BloomForCausalLM

    from fieldnotes.memory.runs import small_bloom_config

    with torch.device("meta"):
        model = BloomForCausalLM(small_bloom_config(spec))
    total, _ = calculate_maximum_sizes(model)
    dtype = "bfloat16" if engine.startswith("deepspeed-") else "float32"
    return int(max(estimate_training_usage(total, dtype).values()))


def playbook_bytes(spec, engine: str, world_size: int) -> int:
    """The Ultra-Scale Playbook's estimate: sharded model states + L x sbh(34 + 5as/h) (bytes)."""
    from fieldnotes.memory.activations import activation_bytes
    from fieldnotes.memory.peak import paper_peak

    activations = activation_bytes(
        spec.seq_len, spec.micro_batch, spec.hidden, spec.heads, spec.layers, "none"
    )
    if not engine.startswith("deepspeed-"):
        activations *= 2  # fp32 activations
    return paper_peak(spec, engine, world_size) + int(activations)


def estimator_table(peaks, world_size: int):
    """One row per measured (model, micro-batch, engine): the measured peak (largest rank, bytes),
    each estimator's bytes and error, and ``best`` (the estimator with the smallest |error|).

    ``peaks``: a DataFrame with ``spec`` (:class:`~fieldnotes.memory.RunSpec`), ``engine``, ``run``,
    ``rank`` and ``peak_bytes``, as :func:`peaks_of` and :func:`~fieldnotes.memory.measure_peaks`
    return. A run's peak is its largest rank's; with several runs of a pair, their median.
    """
    import pandas as pd

    from fieldnotes.memory.peak import paper_peak, predicted_peak

    rows = []
    for (spec, engine), peak in (
        run_peaks(peaks).groupby(["spec", "engine"], sort=False).median().items()
    ):
        row = {
            "model": f"h{spec.hidden} L{spec.layers} V{spec.vocab}",
            "micro_batch": spec.micro_batch,
            "engine": engine,
            "measured_bytes": int(peak),
        }
        ds = deepspeed_bytes(spec, engine, world_size)
        predicted = {
            "paper": paper_peak(spec, engine, world_size),
            "deepspeed": ds,
            "accelerate": accelerate_bytes(spec, engine),
            "playbook": playbook_bytes(spec, engine, world_size),
            "chapter": predicted_peak(spec, engine, world_size).total,
        }
        for name, value in predicted.items():
            row[f"{name}_bytes"] = value
            row[f"{name}_error"] = None if value is None else value / peak - 1
        errors = {n: abs(row[f"{n}_error"]) for n in ESTIMATORS if row[f"{n}_error"] is not None}
        row["best"] = min(errors, key=errors.get)
        rows.append(row)
    table = pd.DataFrame(rows)
    for name in ESTIMATORS:
        table[f"{name}_error"] = table[f"{name}_error"].astype(float)
    return table


def error_view(board):
    """``board``'s (:func:`estimator_table`) errors as signed percentages, "n/a" where an
    estimator has no figure for the row (DeepSpeed's below stage 2 and for PyTorch's engines)."""
    errors = board[[f"{n}_error" for n in ESTIMATORS]]
    return errors.map(lambda v: "n/a" if v != v else f"{v:+.1%}")  # NaN != NaN


def short_rows(board) -> int:
    """Rows of ``board`` in which every estimator other than the chapter's that has a figure
    falls short of the measured peak (an absent one neither counts as short nor as over)."""
    others = board[[f"{n}_error" for n in ESTIMATORS if n != "chapter"]]
    return int(((others < 0) | others.isna()).all(axis=1).sum())


def accelerate_cancels(board):
    """The rows of ``board`` where accelerate's estimate is the closest of the estimators other
    than the chapter's, with the two errors that cancel in it, as fractions of the measured peak:
    ``unsharded`` (what it charges beyond the paper's sharded model states: it does not shard)
    and ``left_out`` (what the paper's model states fall short by: activations, logits,
    buffers, which it does not count either). Its error is their sum, near zero."""
    others = [n for n in ESTIMATORS if n != "chapter"]
    errors = board[[f"{n}_error" for n in others]].abs()
    closest = errors.idxmin(axis=1).str.removesuffix("_error")
    rows = board[closest == "accelerate"]
    return rows.assign(
        unsharded=(rows.accelerate_bytes - rows.paper_bytes) / rows.measured_bytes,
        left_out=rows.paper_error,
    )[["model", "micro_batch", "engine", "accelerate_error", "unsharded", "left_out"]]


def label_engines(table, spec):
    """``table`` (one row per engine, indexed by engine name) with each engine's own settings
    first (:func:`~fieldnotes.memory.runs.engine_settings`) and "n/a" in the DeepSpeed-only
    ``buckets`` column on PyTorch's rows, whose buckets the tracker files as communication."""
    from fieldnotes.memory.runs import engine_settings

    out = table.copy()
    if "buckets" in out:
        out["buckets"] = out["buckets"].astype(object).where(out.index.str.startswith("deepspeed-"), "n/a")
    out.insert(0, "settings", [engine_settings(spec, e) for e in out.index])
    return out


def run_peaks(peaks):
    """Each run's peak: its largest rank's peak bytes, indexed by spec, engine and run (pandas)."""
    if len(peaks) == 0:
        raise ValueError("peaks is empty: no measured run to score")
    missing = {"spec", "engine", "run", "rank", "peak_bytes"} - set(peaks.columns)
    if missing:
        raise ValueError(f"peaks lacks the column(s) {sorted(missing)}")
    return peaks.groupby(["spec", "engine", "run"], sort=False)["peak_bytes"].max()


def peak_spread(peaks):
    """Per spec and engine: how many runs, the smallest and largest run peak (bytes) and their
    spread, (largest - smallest) / median."""
    per_run = run_peaks(peaks).groupby(["spec", "engine"], sort=False)
    table = per_run.agg(["count", "min", "max", "median"])
    table["spread"] = (table["max"] - table["min"]) / table["median"]
    return table.rename(columns={"count": "runs", "min": "min_bytes", "max": "max_bytes"}).drop(
        columns="median"
    )


def peaks_of(measurement, spec, run: int = -1):
    """Each rank's peak of a :func:`~fieldnotes.memory.measure_zero` run of ``spec``: peak bytes,
    phase and bytes per tracker category at the peak, in :func:`~fieldnotes.memory.measure_peaks`'
    columns (``run`` labels it beside that function's runs)."""
    import pandas as pd

    from fieldnotes.memory.timeline import CATEGORIES

    rows = []
    for (engine, rank), group in measurement.timeline.groupby(["engine", "rank"], sort=False):
        at_peak = group.loc[group["total"].idxmax()]
        row = {"spec": spec, "engine": engine, "run": run, "rank": rank}
        row["peak_bytes"] = int(at_peak["total"])
        row["peak_phase"] = at_peak["phase"]
        row.update({c: int(at_peak[c]) for c in CATEGORIES})
        rows.append(row)
    return pd.DataFrame(rows)


def settings_table(peaks, spec, world_size: int):
    """Per ZeRO setting (:data:`~fieldnotes.memory.runs.ZERO_SETTINGS`) and engine of
    :data:`SETTINGS_ENGINES` measured at ``spec``'s shape: the largest rank's peak of the first run and what holds it (MB = 10^6 bytes),
    beside the chapter's estimate and its error."""
    from dataclasses import replace

    import pandas as pd

    from fieldnotes.memory.peak import predicted_peak
    from fieldnotes.memory.runs import ZERO_SETTINGS

    rows = []
    for setting in ZERO_SETTINGS:
        variant = replace(spec, zero_settings=setting)
        # the settings' runs warm up with fewer steps than spec's own (table_jobs)
        mine = peaks[[replace(s, steps=spec.steps) == variant for s in peaks["spec"]]]
        for engine, group in mine[mine["engine"].isin(SETTINGS_ENGINES)].groupby(
            "engine", sort=False
        ):
            first = group[group["run"] == group["run"].min()]
            top = first.loc[first["peak_bytes"].idxmax()]
            estimate = predicted_peak(variant, engine, world_size).total
            rows.append(
                {
                    "setting": setting,
                    "engine": engine,
                    "peak MB": top["peak_bytes"] / 1e6,
                    "buckets MB": top["buckets"] / 1e6,
                    "parameters MB": top["parameters"] / 1e6,
                    "communication MB": top["communication"] / 1e6,
                    "resident MB": top["resident"] / 1e6,
                    "phase": top["peak_phase"],
                    "chapter MB": estimate / 1e6,
                    "chapter_error": estimate / top["peak_bytes"] - 1,
                }
            )
    if not rows:
        raise ValueError("peaks holds no run of spec's shape")
    return pd.DataFrame(rows).set_index(["setting", "engine"])


def grid_specs(spec, models, micro_batches) -> list:
    """``spec``'s model and each of ``models`` (dicts of RunSpec fields), at each micro-batch."""
    from dataclasses import asdict

    from fieldnotes.memory.runs import RunSpec

    if not micro_batches:
        raise ValueError("micro_batches must list at least one micro-batch size")
    base = asdict(spec)
    shapes = [{}] + [dict(m) for m in models]
    for i, m in enumerate(shapes):
        unknown = set(m) - set(base)
        if unknown:
            raise ValueError(f"models[{i - 1}] has unknown RunSpec field(s) {sorted(unknown)}")
    return [RunSpec(**{**base, **m, "micro_batch": b}) for m in shapes for b in micro_batches]


SETTINGS_ENGINES = ("deepspeed-2", "deepspeed-3")  # the engines the ZeRO settings change
TABLE_WARMUP_STEPS = 1  # optimizer steps before the traced one, for the table's extra runs


def table_jobs(spec, *, models, micro_batches, engines, repeat_engines, repeats: int) -> list:
    """The (RunSpec, engine) pairs the chapter measures beyond ``spec``'s own run: every engine at
    every other shape of :func:`grid_specs`, ``repeats - 1`` more runs of ``spec`` for each of
    ``repeat_engines``, and each non-default ZeRO setting for :data:`SETTINGS_ENGINES`.

    The repeats keep ``spec.steps`` (they are runs of the same spec). The other shapes and the
    settings train :data:`TABLE_WARMUP_STEPS` step before their traced step: the traced step's
    bytes do not depend on how many steps came before it once the first has created the
    optimizer's states, and only ``spec``'s own run is timed."""
    from dataclasses import replace

    from fieldnotes.memory.runs import ZERO_SETTINGS
    from fieldnotes.memory.zero import check_count

    repeats = check_count("repeats", repeats, minimum=1)
    engines = list(engines)
    warm = TABLE_WARMUP_STEPS
    jobs = [
        (replace(s, steps=warm), e)
        for s in grid_specs(spec, models, micro_batches)
        if s != spec
        for e in engines
    ]
    jobs += [(spec, e) for e in repeat_engines if e in engines for _ in range(repeats - 1)]
    jobs += [
        (replace(spec, zero_settings=z, steps=warm), e)
        for z in ZERO_SETTINGS
        if z != spec.zero_settings
        for e in SETTINGS_ENGINES
        if e in engines
    ]
    return jobs


__all__ = [
    "SETTINGS_ENGINES",
    "TABLE_WARMUP_STEPS",
    "table_jobs",
    "ESTIMATORS",
    "accelerate_bytes",
    "accelerate_cancels",
    "deepspeed_bytes",
    "error_view",
    "estimator_table",
    "grid_specs",
    "label_engines",
    "peak_spread",
    "peaks_of",
    "run_peaks",
    "settings_table",
    "short_rows",
    "playbook_bytes",
]
