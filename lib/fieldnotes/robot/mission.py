"""A whole field mission: follow every row with the camera, U-turn at the headland, classify each
plant passed, and score the result (rows completed, cross-track error, plants hit, marking accuracy,
localisation error). The robot steers by its own sensing and estimate; only the renderer and the
:class:`Referee` read the simulator's true pose.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldnotes.robot.classifier import predict_proba
from fieldnotes.robot.control import FollowGains, headland_turn, make_row_pid, steer
from fieldnotes.robot.drive import Program, wrap_angle
from fieldnotes.robot.field import LABELS, PLANT_RADIUS_M, Field
from fieldnotes.robot.localisation import SensedRobot
from fieldnotes.robot.marks import MarkScores, score_marks
from fieldnotes.robot.plants import plant_image
from fieldnotes.robot.row_detector import Camera, RowFilter, detect_rows
from fieldnotes.robot.sensing import SensorNoise, Sensors, noise_preset


@dataclass
class MissionConfig:
    """How the robot runs: control rate (Hz), a camera frame every ``camera_every`` control ticks,
    physics step (s), close-up size (px) and lighting, how far past a row's last plant the robot
    drives before it turns (m), gains, camera, sensor noise (a :class:`SensorNoise`, the book's
    ``default`` preset unless given) and its seed, and how many camera frames to keep for an
    animation."""

    control_hz: float = 10.0
    camera_every: int = 2
    time_step: float = 1 / 60
    torch_threads: int = 1  # the classifier's CPU threads during the mission (a Pi has few)
    image_size: int = 64
    lighting: float = 1.0
    headland_m: float = 1.25
    gains: FollowGains = field(default_factory=FollowGains)
    camera: Camera = field(default_factory=Camera)
    noise: SensorNoise = field(default_factory=lambda: noise_preset("default"))
    sensor_seed: int = 0
    keep_frames: int = 0
    max_sim_seconds: float | None = None
    max_reach_m: float = 2.5  # the row detector's reach is trusted as a row's end below this


@dataclass
class MissionResult:
    """Scores and traces of one mission (metres, seconds)."""

    rows_completed: int
    plants: int  # plants in the field
    plants_marked: int  # plants the robot passed and classified
    marking_accuracy: float  # correct marks / plants in the field (unmarked counts as wrong)
    plants_hit: int
    cross_track_rmse_m: float
    localisation_rmse_m: float  # estimated vs true position over the whole run
    sim_seconds: float
    wall_seconds: float
    rows_called_correctly: int  # rows whose majority vote matches their line
    predicted: np.ndarray  # (P,) 0/1, -1 = never classified
    prob_male: np.ndarray  # (P,) nan = never classified
    hit: np.ndarray  # (P,) bool
    trajectory: np.ndarray  # (T, 8): t, x, y, yaw, lane (-1 in headland turns), x̂, ŷ, yaw-hat
    marks: np.ndarray  # (M, 3): x m, y m, label — placed from the pose estimate
    mark_scores: MarkScores  # the marks matched to the true plants (see ``marks``)
    row_ends_seen: int = 0  # lanes whose end the forward camera saw
    frames: list = field(default_factory=list)  # (t, rgb, RowEstimate)

    @property
    def realtime_factor(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.sim_seconds / max(self.wall_seconds, 1e-9)

    def summary(self) -> dict:
        """The numbers written to ``mission.json``."""
        return {
            "rows_completed": int(self.rows_completed),
            "plants": int(self.plants),
            "plants_marked": int(self.plants_marked),
            "marking_accuracy": float(self.marking_accuracy),
            "plants_hit": int(self.plants_hit),
            "cross_track_rmse_m": float(self.cross_track_rmse_m),
            "localisation_rmse_m": float(self.localisation_rmse_m),
            "mark_precision": float(self.mark_scores.mark_precision),
            "mark_recall": float(self.mark_scores.mark_recall),
            "label_accuracy": float(self.mark_scores.label_accuracy),
            "marks_on_own_plant": float(self.mark_scores.own_plant_rate),
            "mark_radius_m": float(self.mark_scores.radius_m),
            "row_ends_seen": int(self.row_ends_seen),
            "rows_called_correctly": int(self.rows_called_correctly),
            "sim_seconds": float(self.sim_seconds),
            "wall_seconds": float(self.wall_seconds),
            "realtime_factor": float(self.realtime_factor),
        }


def lane_x(field_: Field, lane: int) -> float:
    """x of lane ``lane`` (m): the robot inspects row ``lane`` from the lane on its left (−x) side."""
    return (lane - 0.5) * field_.row_spacing_m


def footprint_hits(
    pose: tuple[float, float, float],
    points: np.ndarray,
    length: float,
    width: float,
    radius: float = PLANT_RADIUS_M,
) -> np.ndarray:
    """Which ``points`` (N, 2, m) lie within ``radius`` of the robot's rectangular footprint."""
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = points[:, 0] - x, points[:, 1] - y
    fx, fy = c * dx + s * dy, -s * dx + c * dy
    ox = np.maximum(np.abs(fx) - length / 2, 0)
    oy = np.maximum(np.abs(fy) - width / 2, 0)
    return ox**2 + oy**2 < radius**2


class Referee:
    """Scoring, from the simulator's truth: the true path, plants hit, cross-track error, whether
    the robot stayed in its lane — and, until the side camera finds plants itself, which plants
    the side camera's close-ups are taken of. Nothing the robot steers by comes from here."""

    def __init__(self, field_: Field, sim, robot: SensedRobot, classifier, cfg: MissionConfig):
        self.field, self.sim, self.robot, self.classifier, self.cfg = (
            field_,
            sim,
            robot,
            classifier,
            cfg,
        )
        n_plants = field_.n_plants
        self.predicted = np.full(n_plants, -1, dtype=np.int64)
        self.prob = np.full(n_plants, np.nan)
        self.hit = np.zeros(n_plants, dtype=bool)
        self.trajectory: list[tuple[float, ...]] = []
        self.marks: list[tuple[float, float, int]] = []
        self.mark_plants: list[int] = []  # the plant each mark was made for (scoring only)
        self.xte: list[float] = []
        self.lane = -1
        self.stayed_in_lane = True
        self._order = np.zeros(0, np.int64)
        self._next_plant = 0
        self._direction = 1

    def start_lane(self, lane: int, direction: int) -> None:
        """A new lane: its plants in driving order, and a fresh in-lane record."""
        f = self.field
        self.lane, self._direction, self.stayed_in_lane = lane, direction, True
        in_row = np.flatnonzero(f.plant_row == lane)
        self._order = in_row[np.argsort(f.plant_xy[in_row, 1] * direction)]
        self._next_plant = 0

    def lane_done(self) -> bool:
        """Stayed in the lane and passed every plant of its row."""
        return self.stayed_in_lane and self._next_plant == len(self._order)

    def record(self) -> None:
        """One tick: the true and estimated pose, plants hit; in a lane the cross-track error and
        the close-ups of the plants the robot's centre has just passed."""
        f, geom = self.field, self.robot.geometry
        x, y, yaw = self.sim.render_pose()
        self.trajectory.append((self.sim.time_s, x, y, yaw, self.lane, *self.robot.pose()))
        if f.n_plants:
            self.hit[footprint_hits((x, y, yaw), f.plant_xy, geom.length_m, geom.width_m)] = True
        if self.lane < 0:
            return
        if 0 <= y <= f.row_length_m:
            self.xte.append(x - lane_x(f, self.lane))
        if abs(x - lane_x(f, self.lane)) > f.row_spacing_m / 2:
            self.stayed_in_lane = False
        passed = []
        order = self._order
        while (
            self._next_plant < len(order)
            and (f.plant_xy[order[self._next_plant], 1] - y) * self._direction <= 0
        ):
            passed.append(int(order[self._next_plant]))
            self._next_plant += 1
        if passed:
            cfg = self.cfg
            imgs = np.stack([plant_image(f, k, cfg.image_size, cfg.lighting) for k in passed])
            p = predict_proba(self.classifier, imgs)
            self.prob[passed] = p
            self.predicted[passed] = (p >= 0.5).astype(np.int64)
            # the mark goes on the map where the robot believes the plant is: half a spacing to
            # the side its camera faces (the row's side), from its estimated pose
            xe, ye, yawe = self.robot.pose()
            side = -1.0 if self._direction > 0 else 1.0  # right going up, left coming back
            half = f.row_spacing_m / 2
            mx, my = xe - side * half * math.sin(yawe), ye + side * half * math.cos(yawe)
            self.marks += [(mx, my, int(label)) for label in self.predicted[passed]]
            self.mark_plants += passed


def drive_lane(
    robot: SensedRobot,
    program: Program,
    field_: Field,
    lane: int,
    cfg: MissionConfig,
    max_sim: float,
    on_tick,
    frames: list,
    frame_times: list[float],
) -> tuple[bool, bool]:
    """Follow lane ``lane`` to past its row's end, on the robot's own sensing and estimate.

    Control: each camera frame goes through the row detector and :class:`RowFilter`; the PID
    steers on the filtered offset and heading, and an accepted estimate also fixes the EKF's x and
    yaw against the map. With the rows out of sight the robot holds the lane's heading on the
    EKF's yaw. Row end: when the rows ahead reach less than ``cfg.max_reach_m``, the detector's
    reach plus the odometry's distance so far places the row's end; the robot stops
    ``cfg.headland_m`` beyond it (or, if the camera never saw the end, beyond the planned length).
    Returns (whether the camera saw the row's end, whether the mission ran out of time).
    """
    dt = 1.0 / cfg.control_hz
    direction = 1 if lane % 2 == 0 else -1
    heading = math.pi / 2 if direction > 0 else -math.pi / 2
    x_lane = lane_x(field_, lane)
    planned_end = (field_.row_length_m if direction > 0 else 0.0) * direction
    seen_end: float | None = None
    pid = make_row_pid(cfg.gains)
    row_filter = RowFilter()
    v = omega = 0.0
    tick = 0
    while True:
        _, y_est, yaw_est = robot.pose()
        along = y_est * direction
        end = seen_end if seen_end is not None else planned_end
        if along >= end + cfg.headland_m:
            return seen_end is not None, False
        if robot.time_s > max_sim:
            return seen_end is not None, True
        if tick % cfg.camera_every == 0:
            rgb = robot.camera()
            row_filter.predict(v, omega, dt * cfg.camera_every)
            frame = detect_rows(rgb, cfg.camera, field_.row_spacing_m)
            estimate = row_filter.update(frame)
            if frame.ok and frame.reach_m < cfg.max_reach_m:
                seen_end = along + frame.reach_m * math.cos(frame.heading_rad)
            if cfg.keep_frames and frame_times and robot.time_s >= frame_times[0]:
                frames.append((robot.time_s, rgb, estimate))
                frame_times.pop(0)
            if estimate.ok:
                v, omega = steer(estimate, pid, cfg.gains, dt * cfg.camera_every)
                robot.ekf.lane_fix(
                    x_lane - direction * estimate.offset_m, heading + estimate.heading_rad
                )
            else:
                v = 0.5 * cfg.gains.speed_mps
                omega = float(np.clip(2.0 * wrap_angle(heading - yaw_est), -0.6, 0.6))
            program.drive(v, omega)
        robot.advance(dt)
        tick += 1
        on_tick()


def run_mission(
    field_: Field,
    classifier,
    config: MissionConfig | None = None,
    progress: bool = False,
    make_backend=None,
) -> MissionResult:
    """Drive every row of ``field_`` with a simulated Husky (PyBullet), camera-guided and localised
    by its own encoders and gyro, classifying each plant of the inspected row with ``classifier``
    (a torch module from ``classifier``).

    The steps: **sensing** (:class:`Sensors`: encoder ticks, gyro, camera frames with noise),
    **estimation** (:class:`SensedRobot`'s EKF, corrected by the rows), **control**
    (:func:`drive_lane` and the headland turn, on the estimate only) and **scoring**
    (:class:`Referee`, the only reader of the simulator's true pose besides the renderer).
    ``make_backend(field_, start=, camera=, time_step=)`` builds the simulator (PyBullet's Husky
    unless given).
    """
    from fieldnotes.robot.drive import PyBulletBackend

    cfg = config or MissionConfig()
    if not (cfg.control_hz > 0 and math.isfinite(cfg.control_hz)) or cfg.camera_every < 1:
        raise ValueError(
            f"control_hz must be finite and > 0 and camera_every >= 1, got {cfg.control_hz}, {cfg.camera_every}"
        )
    speed = cfg.gains.speed_mps
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"gains.speed_mps must be a finite number > 0 m/s, got {speed}")
    if not (math.isfinite(cfg.headland_m) and cfg.headland_m > 0):
        raise ValueError(f"headland_m must be a finite number > 0 m, got {cfg.headland_m}")
    dt = 1.0 / cfg.control_hz
    n, spacing, length = field_.n_rows, field_.row_spacing_m, field_.row_length_m
    max_sim = cfg.max_sim_seconds or 60 + 3 * n * (length + 2 * cfg.headland_m + spacing) / speed
    start = (lane_x(field_, 0), -cfg.headland_m, math.pi / 2)
    frame_times: list[float] = []
    if cfg.keep_frames > 0:
        expected = n * (length + 2 * cfg.headland_m) / speed
        frame_times = list(np.arange(cfg.keep_frames) * expected / cfg.keep_frames)
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    wall0 = time.perf_counter()
    build = make_backend or PyBulletBackend
    sim = build(field_, start=start, camera=cfg.camera, time_step=cfg.time_step)
    frames: list = []
    rows_completed = ends_seen = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="rows")
    try:
        # sensing and estimation: the robot knows only where it was put down
        robot = SensedRobot(sim, Sensors(sim, cfg.noise, seed=cfg.sensor_seed), start)
        program = Program(robot, speed=speed, turn_rate=0.8)
        referee = Referee(field_, sim, robot, classifier, cfg)
        robot.calibrate(1.0, dt)
        referee.record()
        for lane in range(n):
            direction = 1 if lane % 2 == 0 else -1
            referee.start_lane(lane, direction)
            saw_end, timed_out = drive_lane(
                robot, program, field_, lane, cfg, max_sim, referee.record, frames, frame_times
            )
            ends_seen += saw_end
            if timed_out:
                break
            rows_completed += referee.lane_done()
            if bar is not None:
                bar.update(1)
            if lane < n - 1:
                referee.lane = -1
                heading = math.pi / 2 if direction > 0 else -math.pi / 2
                headland_turn(
                    program, lane_x(field_, lane + 1), heading, dt=dt, on_tick=referee.record
                )
        program.stop()
    finally:
        sim.close()
        torch.set_num_threads(threads_before)
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - wall0
    return score_mission(field_, referee, frames, rows_completed, ends_seen, sim.time_s, wall)


def score_mission(
    field_: Field,
    referee: Referee,
    frames: list,
    rows_completed: int,
    ends_seen: int,
    sim_seconds: float,
    wall_seconds: float,
) -> MissionResult:
    """The :class:`MissionResult` from the referee's records."""
    predicted = referee.predicted
    marked = predicted >= 0
    correct = int((predicted[marked] == field_.plant_label[marked]).sum())
    rows_ok = 0
    for r in range(field_.n_rows):
        votes = predicted[(field_.plant_row == r) & marked]
        males = int((votes == 1).sum())
        if len(votes) and int(males > len(votes) - males) == field_.lines[r]:
            rows_ok += 1
    xte = np.asarray(referee.xte)
    marks = np.asarray(referee.marks, dtype=np.float64).reshape(-1, 3)
    mark_scores = score_marks(
        marks[:, :2],
        marks[:, 2],
        field_.plant_xy,
        field_.plant_label,
        mark_plants=np.asarray(referee.mark_plants, dtype=np.int64),
    )
    traj = np.asarray(referee.trajectory, dtype=np.float64).reshape(-1, 8)
    loc_err = np.hypot(traj[:, 5] - traj[:, 1], traj[:, 6] - traj[:, 2])
    return MissionResult(
        rows_completed=rows_completed,
        plants=field_.n_plants,
        plants_marked=int(marked.sum()),
        marking_accuracy=correct / field_.n_plants if field_.n_plants else 0.0,
        plants_hit=int(referee.hit.sum()),
        cross_track_rmse_m=float(np.sqrt(np.mean(xte**2))) if len(xte) else float("nan"),
        localisation_rmse_m=float(np.sqrt(np.mean(loc_err**2))) if len(loc_err) else float("nan"),
        sim_seconds=float(sim_seconds),
        wall_seconds=wall_seconds,
        rows_called_correctly=rows_ok,
        predicted=predicted,
        prob_male=referee.prob,
        hit=referee.hit,
        trajectory=traj,
        marks=marks,
        mark_scores=mark_scores,
        row_ends_seen=ends_seen,
        frames=frames,
    )


def row_calls(field_: Field, result: MissionResult):
    """Per row: its line, the plants marked male/female, and the majority call (a DataFrame)."""
    import pandas as pd

    out = []
    for r in range(field_.n_rows):
        sel = field_.plant_row == r
        pred = result.predicted[sel]
        males, females = int((pred == 1).sum()), int((pred == 0).sum())
        call = "—" if males == females == 0 else LABELS[int(males > females)]
        out.append(
            {
                "row": r,
                "line": LABELS[field_.lines[r]],
                "plants": int(sel.sum()),
                "marked female": females,
                "marked male": males,
                "call": call,
                "correct": call == LABELS[field_.lines[r]],
            }
        )
    return pd.DataFrame(out)


def write_mission(field_: Field, result: MissionResult, out_dir: str | Path) -> Path:
    """Write ``mission.json`` (the scores) and ``field.png`` (the marked map) into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from fieldnotes.robot.figures import plot_field

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    summary.update(
        {
            "rows": field_.n_rows,
            "pattern": field_.pattern,
            "seed": field_.seed,
            "row_spacing_m": field_.row_spacing_m,
            "row_length_m": field_.row_length_m,
        }
    )
    (out / "mission.json").write_text(json.dumps(summary, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(7, 6))
    plot_field(field_, result, ax=ax)
    fig.savefig(out / "field.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
