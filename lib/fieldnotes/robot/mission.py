"""A whole field mission: follow every row with the camera, U-turn at the headland, classify each
plant passed, and score the result (rows completed, cross-track error, plants hit, marking accuracy).
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
from fieldnotes.robot.drive import Program
from fieldnotes.robot.field import LABELS, PLANT_RADIUS_M, Field
from fieldnotes.robot.plants import plant_image
from fieldnotes.robot.row_detector import NO_ROWS, Camera, RowFilter, detect_rows


@dataclass
class MissionConfig:
    """How the robot runs: control rate (Hz), a camera frame every ``camera_every`` control ticks,
    physics step (s), close-up size (px) and lighting, headland margin (m), gains, camera, and how
    many camera frames to keep for an animation."""

    control_hz: float = 10.0
    camera_every: int = 2
    time_step: float = 1 / 60
    torch_threads: int = 1  # the classifier's CPU threads during the mission (a Pi has few)
    image_size: int = 64
    lighting: float = 1.0
    headland_m: float = 1.0
    gains: FollowGains = field(default_factory=FollowGains)
    camera: Camera = field(default_factory=Camera)
    keep_frames: int = 0
    max_sim_seconds: float | None = None


@dataclass
class MissionResult:
    """Scores and traces of one mission (metres, seconds)."""

    rows_completed: int
    plants: int  # plants in the field
    plants_marked: int  # plants the robot passed and classified
    marking_accuracy: float  # correct marks / plants in the field (unmarked counts as wrong)
    plants_hit: int
    cross_track_rmse_m: float
    sim_seconds: float
    wall_seconds: float
    rows_called_correctly: int  # rows whose majority vote matches their line
    predicted: np.ndarray  # (P,) 0/1, -1 = never classified
    prob_male: np.ndarray  # (P,) nan = never classified
    hit: np.ndarray  # (P,) bool
    trajectory: np.ndarray  # (T, 5): t, x, y, yaw, lane (-1 in headland turns)
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


def run_mission(
    field_: Field,
    classifier,
    config: MissionConfig | None = None,
    progress: bool = False,
) -> MissionResult:
    """Drive every row of ``field_`` with a simulated Husky (PyBullet), camera-guided, classifying
    each plant of the inspected row with ``classifier`` (a torch module from ``classifier``)."""
    from fieldnotes.robot.drive import PyBulletBackend

    cfg = config or MissionConfig()
    if cfg.control_hz <= 0 or cfg.camera_every < 1:
        raise ValueError(
            f"control_hz must be > 0 and camera_every >= 1, got {cfg.control_hz}, {cfg.camera_every}"
        )
    dt = 1.0 / cfg.control_hz
    n, spacing, length = field_.n_rows, field_.row_spacing_m, field_.row_length_m
    max_sim = cfg.max_sim_seconds or 60 + 3 * n * (length + 2 * cfg.headland_m + spacing) / max(
        cfg.gains.speed_mps, 0.05
    )
    start = (lane_x(field_, 0), -cfg.headland_m, math.pi / 2)
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    wall0 = time.perf_counter()
    backend = PyBulletBackend(field_, start=start, camera=cfg.camera, time_step=cfg.time_step)
    geom = backend.geometry
    program = Program(backend, speed=cfg.gains.speed_mps, turn_rate=0.8)
    n_plants = field_.n_plants
    predicted = np.full(n_plants, -1, dtype=np.int64)
    prob = np.full(n_plants, np.nan)
    hit = np.zeros(n_plants, dtype=bool)
    trajectory: list[tuple[float, float, float, float, int]] = []
    frames: list = []
    frame_every = 0.0
    if cfg.keep_frames > 0:
        expected = n * (length + 2 * cfg.headland_m) / max(cfg.gains.speed_mps, 0.05)
        frame_every = expected / cfg.keep_frames
    next_frame = 0.0
    xte: list[float] = []
    rows_completed = 0
    lane_now = 0

    def record() -> None:
        pose = backend.pose()
        trajectory.append((backend.time_s, *pose, lane_now))
        if n_plants:
            hit[footprint_hits(pose, field_.plant_xy, geom.length_m, geom.width_m)] = True

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="rows")
    timed_out = False
    try:
        record()
        for lane in range(n):
            lane_now = lane
            direction = 1 if lane % 2 == 0 else -1
            heading = math.pi / 2 if direction > 0 else -math.pi / 2
            end_y = length + cfg.headland_m if direction > 0 else -cfg.headland_m
            x_lane = lane_x(field_, lane)
            in_row = np.flatnonzero(field_.plant_row == lane)
            order = in_row[np.argsort(field_.plant_xy[in_row, 1] * direction)]
            next_plant = 0
            pid = make_row_pid(cfg.gains)
            row_filter = RowFilter()
            estimate = NO_ROWS
            v = omega = 0.0
            stayed_in_lane = True
            tick = 0
            while True:
                x, y, _ = backend.pose()
                if (y - end_y) * direction >= 0:
                    break
                if backend.time_s > max_sim:
                    timed_out = True
                    break
                if tick % cfg.camera_every == 0:
                    # a new frame: new errors, one PID step; between frames the command holds
                    rgb = backend.camera_image()
                    row_filter.predict(v, omega, dt * cfg.camera_every)
                    estimate = row_filter.update(detect_rows(rgb, cfg.camera, spacing))
                    if cfg.keep_frames and backend.time_s >= next_frame:
                        frames.append((backend.time_s, rgb, estimate))
                        next_frame += frame_every
                    v, omega = steer(estimate, pid, cfg.gains, dt * cfg.camera_every)
                    program.drive(v, omega)
                backend.advance(dt)
                tick += 1
                record()
                x, y, _ = backend.pose()
                if 0 <= y <= length:
                    xte.append(x - x_lane)
                if abs(x - x_lane) > spacing / 2:
                    stayed_in_lane = False
                # the side camera takes a close-up of each plant the robot's centre passes
                passed = []
                while (
                    next_plant < len(order)
                    and (field_.plant_xy[order[next_plant], 1] - y) * direction <= 0
                ):
                    passed.append(int(order[next_plant]))
                    next_plant += 1
                if passed:
                    imgs = np.stack(
                        [plant_image(field_, k, cfg.image_size, cfg.lighting) for k in passed]
                    )
                    p = predict_proba(classifier, imgs)
                    prob[passed] = p
                    predicted[passed] = (p >= 0.5).astype(np.int64)
            if timed_out:
                break
            if stayed_in_lane and next_plant == len(order):
                rows_completed += 1
            if bar is not None:
                bar.update(1)
            if lane < n - 1:
                lane_now = -1
                headland_turn(program, lane_x(field_, lane + 1), heading, dt=dt, on_tick=record)
        program.stop()
    finally:
        backend.close()
        torch.set_num_threads(threads_before)
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - wall0
    marked = predicted >= 0
    correct = int((predicted[marked] == field_.plant_label[marked]).sum())
    rows_ok = 0
    for r in range(n):
        votes = predicted[(field_.plant_row == r) & marked]
        males = int((votes == 1).sum())
        if len(votes) and int(males > len(votes) - males) == field_.lines[r]:
            rows_ok += 1
    xte_arr = np.asarray(xte)
    return MissionResult(
        rows_completed=rows_completed,
        plants=n_plants,
        plants_marked=int(marked.sum()),
        marking_accuracy=correct / n_plants if n_plants else 0.0,
        plants_hit=int(hit.sum()),
        cross_track_rmse_m=float(np.sqrt(np.mean(xte_arr**2))) if len(xte_arr) else float("nan"),
        sim_seconds=float(backend.time_s),
        wall_seconds=wall,
        rows_called_correctly=rows_ok,
        predicted=predicted,
        prob_male=prob,
        hit=hit,
        trajectory=np.asarray(trajectory, dtype=np.float64),
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
