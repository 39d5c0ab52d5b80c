"""The chapter's mission targets and the robustness table that checks them across noise presets.

Each target names a column of ``benchmarks/results/robot.csv`` (one row per seed and noise preset,
written by ``benchmarks/robot_bench.py``), how the worst run over the seeds is taken (``min`` or
``max``) and the test it must pass. :func:`robustness_table` is used by the benchmark and by the
chapter's page, so both show the same verdicts from the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One target: its label, the CSV column, ``worst`` ("min" or "max" over seeds), the threshold
    and the comparison (``">="``, ``"<="``, ``"=="``; ``None`` = reported, no threshold; a
    threshold of ``"rows"`` means the run's own row count)."""

    label: str
    column: str
    worst: str
    op: str | None = None
    threshold: float | str | None = None


TARGETS: tuple[Target, ...] = (
    Target("rows completed (all)", "rows_completed", "min", "==", "rows"),
    Target("plants hit", "plants_hit", "max", "==", 0),
    Target("mark recall", "mark_recall", "min", ">=", 0.95),
    Target("label accuracy of marks (camera crops)", "label_accuracy", "min", ">=", 0.95),
    Target("cross-track RMS (m)", "cross_track_rmse_m", "max", "<=", 0.05),
    Target("localisation RMSE (m)", "localisation_rmse_m", "max"),
    Target("simulation speed (× real time, both cameras)", "realtime_factor", "min", ">=", 10.0),
    Target(
        "simulation speed per CPU second (× real time)", "realtime_factor_cpu", "min", ">=", 10.0
    ),
)
"""The targets of the mission at book size (see the chapter's closing table)."""


def _met(value: float, target: Target, rows: int) -> str:
    if target.op is None:
        return "reported"
    limit = rows if target.threshold == "rows" else float(target.threshold)
    if not math.isfinite(value):
        return "not met"
    ok = {">=": value >= limit, "<=": value <= limit, "==": value == limit}[target.op]
    return "met" if ok else "not met"


def robustness_table(df):
    """The worst run over the seeds for each target (rows) and noise preset (columns), with
    whether it met the target: a DataFrame with columns ``target``, then per preset
    ``<preset>`` (the worst value) and ``<preset> met``. ``df`` needs the columns
    ``sensor_noise``, ``rows`` and every target's column."""
    import pandas as pd

    needed = {"sensor_noise", "rows", *(t.column for t in TARGETS)}
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(f"the benchmark table lacks the columns {missing}")
    out = {"target": [f"{t.op} {t.threshold}" if t.op else "—" for t in TARGETS]}
    for preset, part in df.groupby("sensor_noise", sort=False):
        rows = int(part["rows"].iloc[0])
        worst = [float(getattr(part[t.column], t.worst)()) for t in TARGETS]
        out[str(preset)] = worst
        out[f"{preset} met"] = [_met(v, t, rows) for v, t in zip(worst, TARGETS, strict=True)]
    return pd.DataFrame(out, index=[t.label for t in TARGETS])
