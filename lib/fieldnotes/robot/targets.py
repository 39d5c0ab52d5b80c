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
    Target("  its 95 % Wilson interval, lower end", "label_accuracy_low", "min"),
    Target("  labelled by the planting plan alone", "plan_label_accuracy", "min"),
    Target("  labelled by the plan unless the camera is sure", "plan_camera_label_accuracy", "min"),
    Target("off-types found (fraction), camera alone", "off_type_recall", "min"),
    Target("  off-types found, plan unless the camera is sure", "plan_camera_off_type_recall", "min"),
    Target("sterile plants called fertile (false alarms), camera", "sterile_called_fertile", "max"),
    Target(
        "  false alarms, plan unless the camera is sure", "plan_camera_sterile_called_fertile", "max"
    ),
    Target("cross-track RMS (m)", "cross_track_rmse_m", "max", "<=", 0.05),
    Target("localisation RMSE (m)", "localisation_rmse_m", "max"),
    Target("simulation speed (× real time, both cameras)", "realtime_factor", "min", ">=", 10.0),
)
"""The targets of the mission at book size (see the chapter's closing table); rows without a
comparison are reported beside them. Speed is wall-clock only: ``robot_bench.py --speed-only``
re-measures that row alone on a quiet machine."""


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


def localisation_by_preset(df) -> dict[str, float]:
    """The worst seed's localisation RMSE (m) per noise preset of a benchmark table."""
    if not {"sensor_noise", "localisation_rmse_m"} <= set(df.columns):
        raise ValueError("the benchmark table needs sensor_noise and localisation_rmse_m")
    worst = df.groupby("sensor_noise", sort=False)["localisation_rmse_m"].max()
    return {str(k): float(v) for k, v in worst.items()}


def noise_effect(by_preset: dict[str, float], seeds: int, tolerance: float = 0.1) -> str:
    """In words, what the noise presets did to the localisation error ``by_preset`` (m, keyed
    ``none``, ``default``, ``high``; the worst of ``seeds`` seeds, one run each): a change under
    ``tolerance`` of the ideal sensors' error is "little". It says what these runs show, not why."""
    missing = {"none", "default", "high"} - set(by_preset)
    if missing:
        raise ValueError(f"by_preset lacks the presets {sorted(missing)}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    runs = f"in these runs ({seeds} seed{'s' if seeds > 1 else ''} per preset, one run each)"
    base, default, high = by_preset["none"], by_preset["default"], by_preset["high"]
    if max(abs(default - base), abs(high - base)) <= tolerance * base:
        return f"the sensor noise changes it little {runs}"
    if base < default < high:
        return f"it grows with the sensor noise {runs}"
    if base >= max(default, high):
        return f"it is largest with ideal sensors {runs}, which so few runs cannot explain"
    return f"it does not grow steadily with the sensor noise {runs}"


def labeller_counts(df) -> dict[str, int]:
    """Over a benchmark table's runs: how many there are, in how many the planting plan alone
    labels the marks better than the camera, and in how many the plan-unless-the-camera-is-sure
    labeller is at least as good as the plan alone."""
    needed = {"label_accuracy", "plan_label_accuracy", "plan_camera_label_accuracy"}
    missing = sorted(needed - set(df.columns))
    if missing:
        raise ValueError(f"the benchmark table lacks the columns {missing}")
    return {
        "bench_runs": len(df),
        "bench_plan_wins": int((df["plan_label_accuracy"] > df["label_accuracy"]).sum()),
        "bench_pc_wins": int((df["plan_camera_label_accuracy"] >= df["plan_label_accuracy"]).sum()),
    }
