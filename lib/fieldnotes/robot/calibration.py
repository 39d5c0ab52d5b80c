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


def measure_turn_slide(
    direction: int,
    turns: int = 4,
    speed_mps: float = 0.6,
    turn_rate_radps: float = 0.8,
    run_in_s: float = 2.0,
    dt: float = 0.1,
) -> np.ndarray:
    """How far the simulated Husky's centre slides in each of ``turns`` quarter turns that the
    encoders and gyro do not see: the calibration run for
    :attr:`~fieldnotes.robot.localisation.EkfSettings.pivot_slide_left` and ``_right``.

    Each turn is the mission's headland quarter turn (``direction`` +1 left, −1 right, at up to
    ``turn_rate_radps`` on the gyro-fed estimate, steps of ``dt`` s) after ``run_in_s`` of
    driving at ``speed_mps`` and coming to rest (:func:`~fieldnotes.robot.control.come_to_rest`,
    as the headland turn does), on flat ground with ideal sensors and no slide model. Returned:
    (turns, 2) the true displacement over the turn minus the estimate's, in the frame of the
    heading at the turn's start (ahead m, left m). This is a calibration rig, like a tape measure
    on a test patch: it reads the simulator's truth, and the mission only ever receives its mean.
    """
    from fieldnotes.robot.control import come_to_rest, turn_to
    from fieldnotes.robot.drive import Program
    from fieldnotes.robot.localisation import EkfSettings, SensedRobot
    from fieldnotes.robot.sensing import Sensors, noise_preset

    if direction not in (-1, 1):
        raise ValueError(f"direction must be +1 (left) or -1 (right), got {direction}")
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    if not all(math.isfinite(v) and v > 0 for v in (speed_mps, turn_rate_radps, dt)):
        raise ValueError(
            f"speed_mps, turn_rate_radps and dt must be finite and > 0, got "
            f"{speed_mps}, {turn_rate_radps}, {dt}"
        )
    no_model = EkfSettings(pivot_slide_left=(0.0, 0.0), pivot_slide_right=(0.0, 0.0))
    out = np.zeros((turns, 2))
    with PyBulletBackend(None, start=(0.0, 0.0, 0.0)) as sim:
        robot = SensedRobot(sim, Sensors(sim, noise_preset("none")), (0.0, 0.0, 0.0),
                            settings=no_model)
        program = Program(robot, speed=speed_mps, turn_rate=turn_rate_radps)
        robot.calibrate(0.5, dt)
        for k in range(turns):
            program.forward(speed_mps)
            for _ in range(int(round(run_in_s / dt))):
                robot.advance(dt)
            come_to_rest(program, dt=dt)
            true0, est0 = np.array(sim.pose()), np.array(robot.pose())
            turn_to(program, wrap_angle(est0[2] + direction * math.pi / 2), dt=dt)
            true1, est1 = np.array(sim.pose()), np.array(robot.pose())
            c, s = math.cos(true0[2]), math.sin(true0[2])
            dx, dy = (true1[:2] - true0[:2]) - (est1[:2] - est0[:2])
            out[k] = (c * dx + s * dy, -s * dx + c * dy)
    return out


def fit_pivot_slide(displacements: np.ndarray, turned_rad: float) -> tuple[tuple[float, float], float]:
    """The mean slide per radian and its spread from quarter turns' measured slides.

    ``displacements`` (N, 2) are :func:`measure_turn_slide`'s (ahead, left) m over turns of
    ``turned_rad`` (signed, rad; + = left) each. The EKF applies a slide of ``b`` m per radian in
    the robot's frame as it turns, which over the turn adds up to ``B(turned_rad) · b`` in the
    start frame; ``b`` solves that for the mean displacement. Returned: ``b`` (ahead, left) m per
    rad and the spread about the mean as the EKF's ``turn_slide_sd`` (m per √rad: the sample sd of
    both components, pooled, over √|turned_rad|).
    """
    d = np.asarray(displacements, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 2 or len(d) < 2 or not np.isfinite(d).all():
        raise ValueError(f"displacements must be (N >= 2, 2) finite metres, got shape {d.shape}")
    if not (math.isfinite(turned_rad) and 0 < abs(turned_rad) < math.pi):
        raise ValueError(f"turned_rad must be finite and 0 < |turned_rad| < pi, got {turned_rad}")
    s, a = math.copysign(1.0, turned_rad), abs(turned_rad)
    b_mat = np.array([[math.sin(a), -s * (1 - math.cos(a))], [s * (1 - math.cos(a)), math.sin(a)]])
    per_rad = np.linalg.solve(b_mat, d.mean(axis=0))
    spread = float(np.sqrt(np.mean(d.var(axis=0, ddof=1))) / math.sqrt(a))
    return (float(per_rad[0]), float(per_rad[1])), spread


def slide_summary(slides: dict[int, np.ndarray]) -> dict:
    """The page's figures from :func:`measure_turn_slide` runs keyed by direction (+1 left, −1
    right): the mean slide ahead and to the left per quarter turn each way (m) and how far the
    furthest turn lay from its direction's mean (cm)."""
    if set(slides) != {1, -1}:
        raise ValueError(f"slides must be keyed 1 (left) and -1 (right), got {sorted(slides)}")
    out = {}
    for d, name in ((1, "left"), (-1, "right")):
        s = np.asarray(slides[d], dtype=np.float64).reshape(-1, 2)
        out[f"slide_{name}_ahead_m"] = float(s[:, 0].mean())
        out[f"slide_{name}_left_m"] = float(s[:, 1].mean())
    spread = max(float(np.abs(s - s.mean(axis=0)).max()) for s in map(np.asarray, slides.values()))
    out["slide_repeat_cm"] = 100 * spread
    return out
