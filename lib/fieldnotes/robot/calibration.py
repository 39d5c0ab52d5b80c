"""Calibrating the skid-steer expansion factor χ on the simulated Husky.

A skid-steer robot turns by dragging its wheels sideways, so it turns more slowly than its
wheel-speed difference says: the effective track is χ times the geometric one
(``SkidSteer.track_factor``). χ is measured here by commanding a body speed and turn rate with the
geometric track (χ = 1), letting the wheels spin up, and dividing the commanded turn rate by the
measured one. It is not one number: it depends on how fast the robot turns and drives.
"""

from __future__ import annotations

import math

import numpy as np

from fieldnotes.robot.drive import HUSKY, PyBulletBackend, wheel_speeds, wrap_angle


def measure_track_factor(
    speed_mps: float, turn_rate_radps: float, seconds: float = 3.0, spin_up_s: float = 1.0
) -> float:
    """χ of the simulated Husky at body speed ``speed_mps`` (m/s) and turn rate
    ``turn_rate_radps`` (rad/s, ≠ 0): the commanded rate over the rate measured over ``seconds``
    after ``spin_up_s`` of spin-up (on flat ground, no plants)."""
    if not (math.isfinite(turn_rate_radps) and turn_rate_radps != 0):
        raise ValueError(f"turn_rate_radps must be finite and non-zero, got {turn_rate_radps}")
    if not (math.isfinite(speed_mps) and speed_mps >= 0):
        raise ValueError(f"speed_mps must be a finite number >= 0 m/s, got {speed_mps}")
    if not (seconds > 0 and spin_up_s >= 0):
        raise ValueError(f"seconds must be > 0 and spin_up_s >= 0, got {seconds}, {spin_up_s}")
    with PyBulletBackend(None, start=(0.0, 0.0, 0.0)) as sim:
        sim.set_wheels(*wheel_speeds(speed_mps, turn_rate_radps, HUSKY))
        sim.advance(spin_up_s)
        turned, yaw = 0.0, sim.pose()[2]
        steps = max(1, int(round(seconds / 0.05)))
        for _ in range(steps):  # sum small steps: the heading wraps in a long turn
            sim.advance(seconds / steps)
            new = sim.pose()[2]
            turned += wrap_angle(new - yaw)
            yaw = new
    rate = turned / seconds
    return float(turn_rate_radps / rate) if rate != 0 else float("inf")


def track_factor_table(speeds_mps, turn_rates_radps):
    """χ over a grid: a DataFrame indexed by speed (m/s), one column per turn rate (rad/s)."""
    import pandas as pd

    speeds, rates = list(speeds_mps), list(turn_rates_radps)
    if not speeds or not rates:
        raise ValueError("speeds_mps and turn_rates_radps must each hold at least one value")
    grid = np.array([[measure_track_factor(v, w) for w in rates] for v in speeds])
    return pd.DataFrame(
        grid,
        index=pd.Index(speeds, name="speed (m/s)"),
        columns=pd.Index(rates, name="turn rate (rad/s)"),
    )


def describe_trend(values: np.ndarray, tolerance: float = 0.02) -> str:
    """In words, how χ (or any value) changes over increasing turn rates ``values`` (1-D): steps
    smaller than ``tolerance`` of the mean count as level. Used by the page so its sentence
    follows the numbers."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) < 2 or not np.isfinite(v).all():
        raise ValueError(f"values must hold at least two finite numbers, got {values!r}")
    steps = np.diff(v) / abs(v.mean())
    signs = np.where(steps > tolerance, 1, np.where(steps < -tolerance, -1, 0))
    moves = signs[signs != 0]
    if not len(moves):
        return "it is about the same at every turn rate"
    if (moves < 0).all():
        return "it falls as the turn rate rises"
    if (moves > 0).all():
        return "it rises with the turn rate"
    low, high = int(np.argmin(v)), int(np.argmax(v))
    if 0 < low < len(v) - 1:
        return "it falls as the turn rate rises, then rises again at the fastest turns"
    if 0 < high < len(v) - 1:
        return "it rises with the turn rate, then falls again at the fastest turns"
    return "it changes with the turn rate, up and down"


def summarise_track_factor(table, headland_rate: float, model: float) -> dict:
    """The figures the page quotes from a :func:`track_factor_table` (speeds × turn rates, rad/s)
    against the ``model``'s χ: the range (and as multiples of the model), χ averaged over the
    speeds at the slowest and fastest turn rates and at ``headland_rate`` (which must be one of the
    table's), the trend in words (:func:`describe_trend`), and the largest change the speed makes
    at one turn rate as a fraction of that rate's mean."""
    if headland_rate not in table.columns:
        raise ValueError(f"headland_rate {headland_rate} is not a turn rate of the table")
    values = table.to_numpy()
    by_rate = table.mean(axis=0)
    return {
        "chi_model": float(model),
        "chi_min": float(values.min()),
        "chi_max": float(values.max()),
        "chi_min_ratio": float(values.min()) / model,
        "chi_max_ratio": float(values.max()) / model,
        "rate_slowest": float(by_rate.index.min()),
        "rate_fastest": float(by_rate.index.max()),
        "chi_slowest": float(by_rate.iloc[0]),
        "chi_fastest": float(by_rate.iloc[-1]),
        "chi_headland": float(by_rate[headland_rate]),
        "headland_rate": float(headland_rate),
        "chi_shape": describe_trend(by_rate.to_numpy()),
        "chi_speed_effect": float(((table.max(axis=0) - table.min(axis=0)) / by_rate).max()),
    }
