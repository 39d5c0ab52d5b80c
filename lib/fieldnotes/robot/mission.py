"""A whole field mission: follow every row with the camera, U-turn at the headland, find and
classify the plants in the side camera's frames, mark them on the map, and score the result (rows
completed, cross-track error, plants hit, marks, localisation error). The robot steers and marks by
its own sensing and estimate; only the renderer and the :class:`Referee` read the simulator's true
pose and the plot's plant list.
"""

from __future__ import annotations

import dataclasses
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
from fieldnotes.robot.localisation import EkfSettings, SensedRobot
from fieldnotes.robot.marks import (
    MARK_RADIUS_M,
    LabellerScores,
    MarkScores,
    match_marks,
    plan_camera_labels,
    score_labeller,
    score_marks,
)
from fieldnotes.robot.row_detector import (
    BEGIN_BEFORE_FIRST_M,
    REACH_BEYOND_LAST_M,
    Camera,
    RowFilter,
    detect_rows,
)
from fieldnotes.robot.sensing import SensorNoise, Sensors, noise_preset
from fieldnotes.robot.side_camera import FlowerTracks, SideCamera, find_flowers, to_world


@dataclass
class MissionConfig:
    """How the robot runs: control rate (Hz), a forward-camera frame every ``camera_every`` control
    ticks and a side-camera frame every ``side_every``, physics step (s), the classifier's crop
    size (px), the plants' lighting variation, how far past a row's last plant the robot drives before it turns (m), gains, both
    cameras, sensor noise (a :class:`SensorNoise`, the book's ``default`` preset unless given) and
    its seed, how close (m) two sightings must be to be one plant, how many forward frames and
    side crops to keep for the page, and whether the row end seen ahead fixes the position along
    the rows (with what noise, m)."""

    control_hz: float = 10.0
    camera_every: int = 2
    side_every: int = 5
    time_step: float = 1 / 60
    torch_threads: int = 1  # the classifier's CPU threads during the mission (a Pi has few)
    image_size: int = 64
    lighting: float = 1.0  # lighting variation of the plants' close-ups (1 = the book's)
    headland_m: float = 1.25
    gains: FollowGains = field(default_factory=FollowGains)
    camera: Camera = field(default_factory=Camera)
    side_camera: SideCamera = field(default_factory=SideCamera)
    merge_m: float = 0.2
    keep_crops: int = 0
    noise: SensorNoise = field(default_factory=lambda: noise_preset("default"))
    sensor_seed: int = 0
    keep_frames: int = 0
    max_sim_seconds: float | None = None
    max_reach_m: float = 2.5  # the row detector's reach is trusted as a row's end below this
    row_end_fix: bool = True  # the row's start and end seen ahead fix y against the planting plan
    row_start_view_m: float = 0.9  # the row's start is read while it is at least this far ahead
    row_end_sd_m: float = 0.08  # that fix's noise (m), once per row end
    row_end_gate_m: float = 1.0  # a row end seen more than this short of the plan's is a gap
    row_end_sigmas: float = 2.0  # ... as is one beyond this many sds of the odometry's along y
    ekf: EkfSettings = field(default_factory=EkfSettings)  # the estimate's noise and slide model
    off_type_threshold: float = 0.9  # plan+camera labeller: P the camera needs to overrule the plan

    def __post_init__(self) -> None:
        """Refuse an off-type threshold outside [0.5, 1] (NaN included) now, not after the mission."""
        t = self.off_type_threshold
        if not (math.isfinite(t) and 0.5 <= t <= 1):
            raise ValueError(f"off_type_threshold must be a probability in [0.5, 1], got {t!r}")


@dataclass
class MissionResult:
    """Scores and traces of one mission (metres, seconds)."""

    rows_completed: int
    plants: int  # plants in the field
    plants_marked: int  # plants with a mark matched to them (within the mark radius)
    marking_accuracy: float  # plants with a correctly labelled mark / plants in the field
    plants_hit: int
    cross_track_rmse_m: float
    localisation_rmse_m: float  # estimated vs true position over the whole run
    sim_seconds: float
    wall_seconds: float
    rows_called_correctly: int  # lanes whose marks' majority label matches their row's line
    predicted: np.ndarray  # (P,) label of the mark matched to each plant, -1 = none
    prob_male: np.ndarray  # (P,) that mark's mean P(male), nan = none
    hit: np.ndarray  # (P,) bool
    trajectory: np.ndarray  # (T, 8): t, x, y, yaw, lane (-1 in headland turns), x̂, ŷ, yaw-hat
    marks: np.ndarray  # (M, 3): x m, y m, label — placed from the pose estimate
    mark_scores: MarkScores  # the marks matched to the true plants (see ``marks``)
    mark_lane: np.ndarray  # (M,) the lane each mark was made from
    crop_confusion: np.ndarray  # (2, 2) camera crops: true line (rows) × predicted (columns)
    crops_unmatched: int  # crops of no plant (no true plant within the mark radius)
    row_ends_seen: int = 0  # lanes whose end the forward camera saw
    row_starts_seen: int = 0  # lanes whose start the forward camera saw from the headland
    row_end_readings_set_aside: int = 0  # frames whose rows ran out ahead short of the plan's end
    plan_label_accuracy: float = float("nan")  # matched marks labelled by their row's line alone
    off_types: int = 0  # plants unlike their row's line (fertile in a female row)
    off_types_called_fertile: int = 0  # of those, matched to a mark labelled male (fertile)
    sterile_called_fertile: int = 0  # truly sterile plants whose mark says fertile (false alarms)
    plan_camera: LabellerScores | None = None  # the plan's labels unless the camera is sure
    off_type_threshold: float = float("nan")  # the P(class) that overrules the plan there
    mark_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (M,) mean P(male)
    sighting_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))  # each crop's P(male)
    sighting_truth: np.ndarray = field(  # the label of the plant each crop shows, -1 = none
        default_factory=lambda: np.zeros(0, np.int64)
    )
    sighting_off_type: np.ndarray = field(  # whether the plant each crop shows is an off-type
        default_factory=lambda: np.zeros(0, bool)
    )
    frames: list = field(default_factory=list)  # (t, rgb, RowEstimate)
    crops: list = field(default_factory=list)  # (crop, P(male), true label or -1), the first few

    cpu_seconds: float = float("nan")  # this process's CPU time over the run (s)

    @property
    def realtime_factor(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.sim_seconds / max(self.wall_seconds, 1e-9)

    @property
    def realtime_factor_cpu(self) -> float:
        """Simulated seconds per CPU second of this process: the speed on a core of its own,
        whatever else the machine was running."""
        return self.sim_seconds / max(self.cpu_seconds, 1e-9)

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
            "row_starts_seen": int(self.row_starts_seen),
            "row_end_readings_set_aside": int(self.row_end_readings_set_aside),
            "label_accuracy_low": float(self.mark_scores.label_interval()[0]),
            "label_accuracy_high": float(self.mark_scores.label_interval()[1]),
            "plan_label_accuracy": float(self.plan_label_accuracy),
            "off_types": int(self.off_types),
            "off_types_called_fertile": int(self.off_types_called_fertile),
            "sterile_called_fertile": int(self.sterile_called_fertile),
            "off_type_threshold": float(self.off_type_threshold),
            **{
                f"plan_camera_{k}": v
                for k, v in dataclasses.asdict(self.plan_camera or _NO_LABELLER).items()
            },
            "crops": int(self.crop_confusion.sum() + self.crops_unmatched),
            "crop_accuracy": float(
                np.trace(self.crop_confusion) / max(self.crop_confusion.sum(), 1)
            ),
            "rows_called_correctly": int(self.rows_called_correctly),
            "sim_seconds": float(self.sim_seconds),
            "wall_seconds": float(self.wall_seconds),
            "realtime_factor": float(self.realtime_factor),
            "cpu_seconds": float(self.cpu_seconds),
            "realtime_factor_cpu": float(self.realtime_factor_cpu),
        }


_NO_LABELLER = LabellerScores(float("nan"), 0, 0, 0)


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
    the robot stayed in its lane and passed all of its row, and which plant each side-camera
    sighting truly shows. Nothing the robot steers or marks by comes from here."""

    def __init__(self, field_: Field, sim, robot: SensedRobot):
        self.field, self.sim, self.robot = field_, sim, robot
        self.hit = np.zeros(field_.n_plants, dtype=bool)
        self.trajectory: list[tuple[float, ...]] = []
        self.sighting_plant: list[int] = []  # the plant each sighting truly shows, -1 = none
        self.xte: list[float] = []
        self.lane = -1
        self.stayed_in_lane = True
        self._direction = 1
        self._span = (0.0, 0.0)  # along the lane (y · direction): the row's first and last plant
        self._driven = [math.inf, -math.inf]  # the least and most along the robot's centre was

    def start_lane(self, lane: int, direction: int) -> None:
        """A new lane: where its row begins and ends in driving direction (its plants', or the
        planting plan's if it has none), and a fresh in-lane record."""
        f = self.field
        self.lane, self._direction, self.stayed_in_lane = lane, direction, True
        ys = f.plant_xy[f.plant_row == lane, 1]
        if not len(ys):
            ys = np.asarray(f.planted_ends_m)
        along = ys * direction
        self._span = (float(along.min()), float(along.max()))
        self._driven = [math.inf, -math.inf]

    def lane_done(self) -> bool:
        """Stayed in the lane and drove its row's whole length: the robot's true centre was, in
        this lane, both before the row's first plant and past its last."""
        first, last = self._span
        return self.stayed_in_lane and self._driven[0] <= first and self._driven[1] >= last

    def record(self) -> None:
        """One tick: the true and estimated pose, plants hit; in a lane the cross-track error and
        how far along the row the robot's centre has passed."""
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
        along = y * self._direction
        self._driven = [min(self._driven[0], along), max(self._driven[1], along)]

    def sighted(self, x_m: float, y_m: float) -> None:
        """A side-camera sighting at (x, y) in the robot frame (m): the true plant it shows (the
        nearest within the mark radius of where the true pose puts it), or none."""
        f = self.field
        wx, wy = to_world(self.sim.render_pose(), x_m, y_m)
        plant = -1
        if f.n_plants:
            d = np.hypot(f.plant_xy[:, 0] - wx, f.plant_xy[:, 1] - wy)
            k = int(np.argmin(d))
            plant = k if d[k] < MARK_RADIUS_M else -1
        self.sighting_plant.append(plant)


class PlantInspector:
    """The side camera's work in a lane: a frame from the side facing the inspected row, the
    flower heads found in it (:func:`~fieldnotes.robot.side_camera.find_flowers`), each crop
    classified, and the sightings joined into tracks on the map from the pose estimate — one
    :class:`~fieldnotes.robot.side_camera.FlowerTracks` per lane, so the marks know their lane."""

    def __init__(self, robot: SensedRobot, classifier, cfg: MissionConfig, on_sighting=None):
        self.robot, self.classifier, self.cfg = robot, classifier, cfg
        self.on_sighting = on_sighting
        self.lanes: list[FlowerTracks] = []
        self.crops: list[tuple[np.ndarray, float, int]] = []  # kept for the page

    def start_lane(self) -> None:
        """A fresh set of tracks for the next lane."""
        self.lanes.append(FlowerTracks(self.cfg.merge_m))

    def look(self, side: int) -> None:
        """One side frame (``side`` +1 left, −1 right): find, classify and track its plants."""
        cfg = self.cfg
        frame = self.robot.side_camera(side)
        found = find_flowers(frame, cfg.side_camera, side, crop_px=cfg.image_size)
        if not found:
            return
        probs = predict_proba(self.classifier, np.stack([f.crop for f in found]))
        pose = self.robot.pose()
        for sighting, prob in zip(found, probs, strict=True):
            self.lanes[-1].add(
                *to_world(pose, sighting.x_m, sighting.y_m),
                float(prob),
                tag=(self.robot.ekf.along_correction_m, self.robot.ekf.y_travel_m),
            )
            if self.on_sighting is not None:
                self.on_sighting(sighting.x_m, sighting.y_m)
            if len(self.crops) < cfg.keep_crops:
                self.crops.append((sighting.crop, float(prob), -1))

    def marks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every lane's marks (M, 3: x m, y m, label), the lane of each (M,), and each mark's mean
        P(male) (M,)."""
        marks = [t.marks() for t in self.lanes]
        lanes = [np.full(len(m), k, np.int64) for k, m in enumerate(marks)]
        probs = [t.mean_prob() for t in self.lanes]
        if not marks:
            return np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(marks), np.concatenate(lanes), np.concatenate(probs)

    def sightings(self) -> tuple[np.ndarray, np.ndarray]:
        """Every sighting's P(male) and the index of the mark (across lanes) it joined."""
        probs, tracks, offset = [], [], 0
        for t in self.lanes:
            probs += t.sighting_prob
            tracks += [k + offset for k in t.sighting_track]
            offset += len(t.marks())
        return np.asarray(probs, float), np.asarray(tracks, np.int64)


class RowEnd:
    """A lane's row end as the forward camera sees it, held against odometry and the planting plan.

    Each frame in which the rows run out ahead is a reading of where the row's last plant lies:
    the EKF's y plus the detector's reach (less ``REACH_BEYOND_LAST_M``). A reading counts only if
    (1) it lies within ``sigmas`` of the odometry's own uncertainty along the rows (the EKF's sd of
    y and the reading's, combined) of the plan's last planting position ``last_planted_y`` (m),
    and never more than ``gate_m`` from it — a gap in the planting also makes the rows ahead run
    out, earlier, and a missing last plant by one planting pitch, which an odometry that knows its
    position to better than half a pitch tells from its own error — and (2) the position it
    implies passes the EKF's gate along the rows
    (:meth:`~fieldnotes.robot.localisation.PoseEkf.along_consistent`). The readings of one row
    end share their errors (the same plants seen, the same odometry), so they are fused as one
    fix, not one each: their median, once (:meth:`fuse`)."""

    def __init__(
        self, last_planted_y: float, direction: int, gate_m: float, sigmas: float = 2.0
    ):
        if not (math.isfinite(gate_m) and gate_m > 0):
            raise ValueError(f"row_end_gate_m must be a finite number > 0 m, got {gate_m}")
        if not (math.isfinite(sigmas) and sigmas > 0):
            raise ValueError(f"row_end_sigmas must be a finite number > 0, got {sigmas}")
        self.last_planted_y, self.direction, self.gate_m = last_planted_y, direction, gate_m
        self.sigmas = sigmas
        self.readings: list[float] = []  # y (m, odometry frame) of the row's last plant
        self.rejected = 0

    @property
    def seen(self) -> bool:
        """Whether any reading was taken."""
        return bool(self.readings)

    def offer(self, ekf, ahead_m: float, sd_m: float) -> bool:
        """One frame's reading: the row's last plant ``ahead_m`` (m) ahead along the lane. Returns
        whether it was taken."""
        y_now = float(ekf.state[1])
        seen_y = y_now + self.direction * ahead_m
        short_m = (self.last_planted_y - seen_y) * self.direction
        allowed = min(self.gate_m, self.sigmas * math.sqrt(float(ekf.cov[1, 1]) + sd_m**2))
        ok = abs(short_m) <= allowed and ekf.along_consistent(
            self.last_planted_y - self.direction * ahead_m, sd_m
        )
        if ok:
            self.readings.append(seen_y)
        else:
            self.rejected += 1
        return ok

    def end_along(self) -> float:
        """The row's last plant along the lane (y · direction, m, odometry frame): the readings'
        median."""
        if not self.readings:
            raise ValueError("no reading of the row end was taken")
        return float(np.median(self.readings)) * self.direction

    def fuse(self, ekf, sd_m: float) -> bool:
        """Fix the EKF's y once from the readings' median against the planting plan; returns
        whether the fix passed the EKF's gate."""
        shift = self.last_planted_y - self.end_along() * self.direction
        return ekf.along_fix(float(ekf.state[1]) + shift, sd_m)


@dataclass(frozen=True)
class LaneRun:
    """How one lane went: whether the forward camera saw the row's end (a reading passed
    :class:`RowEnd`'s gates), how many readings were set aside as not the end (gaps), whether the
    end's fix passed the EKF's gate, whether the mission ran out of time, and whether the row's
    start was seen from the headland and its fix passed the gate."""

    saw_end: bool
    timed_out: bool
    readings_set_aside: int = 0
    end_fixed: bool = False
    saw_start: bool = False
    start_fixed: bool = False


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
    inspect=None,
) -> LaneRun:
    """Follow lane ``lane`` to past its row's end, on the robot's own sensing and estimate.

    Control: each camera frame goes through the row detector and :class:`RowFilter`; the PID
    steers on the filtered offset and heading, and an accepted estimate also fixes the EKF's x and
    yaw against the map. With the rows out of sight the robot holds the lane's heading on the
    EKF's yaw. Row end: when the rows ahead reach less than ``cfg.max_reach_m``, the detector's
    reach (less ``REACH_BEYOND_LAST_M``) says how far ahead the row's last plant is — a reading
    for :class:`RowEnd`, which sets it aside if odometry puts it farther from the planting plan's
    last position than its own uncertainty allows (``cfg.row_end_sigmas``, at most
    ``cfg.row_end_gate_m``) or the EKF's gate rejects it (a gap in the planting, a missing last
    plant). The readings taken place the row's end; the robot stops ``cfg.headland_m`` beyond
    it (or, if none was taken, beyond the planned length), and with ``cfg.row_end_fix`` their
    median fixes the EKF's y once (:meth:`RowEnd.fuse`).
    Lane entry: the headland turn's slide leaves y off by what its calibrated mean does not
    predict, and the forward camera sees where the rows begin. While the planting plan, by the
    estimate, and the frame both put the row's first plant at least ``cfg.row_start_view_m``
    ahead (nearer, the frame's bottom edge cuts into it), the rows' near end
    (``begin_m`` + ``BEGIN_BEFORE_FIRST_M``) is a reading of the first planting position, gated
    as the end's are (a missing first plant reads a pitch late); with ``cfg.row_end_fix`` their
    median fixes y once as the robot comes nearer, before the side camera sees the row's plants.
    Plants: every ``cfg.side_every`` ticks ``inspect(side)`` looks at the row from the side that
    faces it (right going up, left coming back).
    """
    dt = 1.0 / cfg.control_hz
    direction = 1 if lane % 2 == 0 else -1
    heading = math.pi / 2 if direction > 0 else -math.pi / 2
    x_lane = lane_x(field_, lane)
    planned_end = (field_.row_length_m if direction > 0 else 0.0) * direction
    last_planted = field_.planted_ends_m[1] if direction > 0 else field_.planted_ends_m[0]
    row_end = RowEnd(last_planted, direction, cfg.row_end_gate_m, cfg.row_end_sigmas)
    first_planted = field_.planted_ends_m[0] if direction > 0 else field_.planted_ends_m[1]
    row_start = RowEnd(first_planted, direction, cfg.row_end_gate_m, cfg.row_end_sigmas)
    start_ahead, start_fixed = True, False  # the row's start still ahead, in view; its fix
    pid = make_row_pid(cfg.gains)
    row_filter = RowFilter()
    v = omega = 0.0
    tick = 0
    while True:
        _, y_est, yaw_est = robot.pose()
        along = y_est * direction
        end = row_end.end_along() if row_end.seen else planned_end
        timed_out = robot.time_s > max_sim
        if along >= end + cfg.headland_m or timed_out:
            fixed = row_end.seen and cfg.row_end_fix and row_end.fuse(robot.ekf, cfg.row_end_sd_m)
            return LaneRun(
                row_end.seen, timed_out, row_end.rejected, fixed, row_start.seen, start_fixed
            )
        if tick % cfg.camera_every == 0:
            rgb = robot.camera()
            row_filter.predict(v, omega, dt * cfg.camera_every)
            frame = detect_rows(rgb, cfg.camera, field_.row_spacing_m)
            estimate = row_filter.update(frame)
            if start_ahead and (first_planted - y_est) * direction >= cfg.row_start_view_m:
                first_ahead = frame.begin_m + BEGIN_BEFORE_FIRST_M
                if frame.ok and first_ahead >= cfg.row_start_view_m:
                    ahead = first_ahead * math.cos(frame.heading_rad)
                    row_start.offer(robot.ekf, ahead, cfg.row_end_sd_m)
            elif start_ahead:
                start_ahead = False
                start_fixed = (
                    row_start.seen
                    and cfg.row_end_fix
                    and row_start.fuse(robot.ekf, cfg.row_end_sd_m)
                )
            if frame.ok and frame.reach_m < cfg.max_reach_m:
                ahead = (frame.reach_m - REACH_BEYOND_LAST_M) * math.cos(frame.heading_rad)
                row_end.offer(robot.ekf, ahead, cfg.row_end_sd_m)
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
        if inspect is not None and tick % cfg.side_every == 0:
            inspect(-direction)
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
    ``make_backend(field_, start=, camera=, time_step=, side_camera=, flower_lighting=)`` builds the simulator (PyBullet's Husky
    unless given).
    """
    from fieldnotes.robot.drive import PyBulletBackend

    cfg = config or MissionConfig()
    if not (cfg.control_hz > 0 and math.isfinite(cfg.control_hz)) or cfg.camera_every < 1:
        raise ValueError(
            f"control_hz must be finite and > 0 and camera_every >= 1, got {cfg.control_hz}, {cfg.camera_every}"
        )
    if cfg.side_every < 1:
        raise ValueError(f"side_every must be >= 1 control ticks, got {cfg.side_every}")
    speed = cfg.gains.speed_mps
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"gains.speed_mps must be a finite number > 0 m/s, got {speed}")
    if not (math.isfinite(cfg.headland_m) and cfg.headland_m > 0):
        raise ValueError(f"headland_m must be a finite number > 0 m, got {cfg.headland_m}")
    if not cfg.row_start_view_m > 0:  # inf: the rows' start is never read
        raise ValueError(
            f"row_start_view_m must be a number > 0 m (inf: never read), got {cfg.row_start_view_m}"
        )
    if cfg.max_sim_seconds is not None and not (
        math.isfinite(cfg.max_sim_seconds) and cfg.max_sim_seconds > 0
    ):
        raise ValueError(
            f"max_sim_seconds must be None or a finite number > 0 s, got {cfg.max_sim_seconds}"
        )
    dt = 1.0 / cfg.control_hz
    n, spacing, length = field_.n_rows, field_.row_spacing_m, field_.row_length_m
    max_sim = cfg.max_sim_seconds
    if max_sim is None:
        max_sim = 60 + 3 * n * (length + 2 * cfg.headland_m + spacing) / speed
    start = (lane_x(field_, 0), -cfg.headland_m, math.pi / 2)
    frame_times: list[float] = []
    if cfg.keep_frames > 0:
        expected = n * (length + 2 * cfg.headland_m) / speed
        frame_times = list(np.arange(cfg.keep_frames) * expected / cfg.keep_frames)
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    build = make_backend or PyBulletBackend
    sim = build(
        field_,
        start=start,
        camera=cfg.camera,
        time_step=cfg.time_step,
        side_camera=cfg.side_camera,
        flower_lighting=cfg.lighting,
    )
    frames: list = []
    rows_completed = ends_seen = ends_set_aside = starts_seen = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="rows")
    try:
        # sensing and estimation: the robot knows only where it was put down
        robot = SensedRobot(
            sim, Sensors(sim, cfg.noise, seed=cfg.sensor_seed), start, settings=cfg.ekf
        )
        program = Program(robot, speed=speed, turn_rate=0.8)
        referee = Referee(field_, sim, robot)
        inspector = PlantInspector(robot, classifier, cfg, on_sighting=referee.sighted)
        robot.calibrate(1.0, dt)
        referee.record()
        for lane in range(n):
            direction = 1 if lane % 2 == 0 else -1
            referee.start_lane(lane, direction)
            inspector.start_lane()
            run = drive_lane(
                robot,
                program,
                field_,
                lane,
                cfg,
                max_sim,
                referee.record,
                frames,
                frame_times,
                inspect=inspector.look,
            )
            ends_seen += run.saw_end
            starts_seen += run.saw_start
            ends_set_aside += run.readings_set_aside
            # the lane's sightings were placed from an estimate whose error along the rows the
            # row end's fix has since measured: each moves by its share of what was corrected
            # after it, in proportion to the travel along y since the fix before
            inspector.lanes[-1].settle(robot.ekf.along_correction_m, robot.ekf.last_fix_travel_m)
            if run.timed_out:
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
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    result = score_mission(
        field_,
        referee,
        inspector,
        frames,
        rows_completed,
        ends_seen,
        sim.time_s,
        wall,
        off_type_threshold=cfg.off_type_threshold,
    )
    result.cpu_seconds = cpu
    result.row_end_readings_set_aside = ends_set_aside
    result.row_starts_seen = starts_seen
    return result


def score_mission(
    field_: Field,
    referee: Referee,
    inspector: PlantInspector,
    frames: list,
    rows_completed: int,
    ends_seen: int,
    sim_seconds: float,
    wall_seconds: float,
    off_type_threshold: float = 0.9,
) -> MissionResult:
    """The :class:`MissionResult` from the inspector's marks and the referee's records.

    Three labellers are scored on the same matched marks: the camera's (each mark's own label),
    the planting plan's alone (every mark its row's line) and the plan's unless the camera is sure
    (:func:`~fieldnotes.robot.marks.plan_camera_labels` at ``off_type_threshold``).

    Marks are matched to the true plants (:func:`~fieldnotes.robot.marks.match_marks`, within
    ``MARK_RADIUS_M``); a plant's predicted label is its matched mark's. A lane's call is the
    majority label of the marks made from it (what the robot itself can say), scored against the
    line of the row it inspected. A crop's truth is the plant the referee says it shows.
    """
    marks, mark_lane, mark_prob = inspector.marks()
    seen_probs, seen_track = inspector.sightings()
    seen_plant = np.asarray(referee.sighting_plant, dtype=np.int64)
    # the plant each mark was made for: the one most of its sightings truly show
    mark_plants = np.full(len(marks), -1, dtype=np.int64)
    for m in range(len(marks)):
        shown = seen_plant[(seen_track == m) & (seen_plant >= 0)]
        if len(shown):
            mark_plants[m] = int(np.bincount(shown).argmax())
    mark_scores = score_marks(
        marks[:, :2], marks[:, 2], field_.plant_xy, field_.plant_label, mark_plants=mark_plants
    )
    match = match_marks(marks[:, :2], field_.plant_xy, MARK_RADIUS_M)
    predicted = np.full(field_.n_plants, -1, dtype=np.int64)
    prob = np.full(field_.n_plants, np.nan)
    predicted[match[match >= 0]] = marks[match >= 0, 2].astype(np.int64)
    prob[match[match >= 0]] = mark_prob[match >= 0]
    correct = int((predicted[predicted >= 0] == field_.plant_label[predicted >= 0]).sum())
    rows_ok = int((lane_calls(marks, mark_lane, field_.n_rows) == field_.lines).sum())
    # the baseline that knows only the planting plan: every mark gets its lane's row's line
    hit = match >= 0
    plan_correct = field_.lines[mark_lane[hit]] == field_.plant_label[match[hit]]
    off = field_.off_types
    both = plan_camera_labels(mark_lane, mark_prob, field_.lines, off_type_threshold)
    confusion = np.zeros((2, 2), dtype=np.int64)
    shows = seen_plant >= 0
    truth = field_.plant_label[seen_plant[shows]]
    np.add.at(confusion, (truth, (seen_probs[shows] >= 0.5).astype(np.int64)), 1)
    crops = [
        (crop, p, int(field_.plant_label[k]) if k >= 0 else -1)
        for (crop, p, _), k in zip(inspector.crops, seen_plant, strict=False)
    ]
    xte = np.asarray(referee.xte)
    traj = np.asarray(referee.trajectory, dtype=np.float64).reshape(-1, 8)
    loc_err = np.hypot(traj[:, 5] - traj[:, 1], traj[:, 6] - traj[:, 2])
    return MissionResult(
        rows_completed=rows_completed,
        plants=field_.n_plants,
        plants_marked=int((predicted >= 0).sum()),
        marking_accuracy=correct / field_.n_plants if field_.n_plants else 0.0,
        plants_hit=int(referee.hit.sum()),
        cross_track_rmse_m=float(np.sqrt(np.mean(xte**2))) if len(xte) else float("nan"),
        localisation_rmse_m=float(np.sqrt(np.mean(loc_err**2))) if len(loc_err) else float("nan"),
        sim_seconds=float(sim_seconds),
        wall_seconds=wall_seconds,
        rows_called_correctly=rows_ok,
        predicted=predicted,
        prob_male=prob,
        hit=referee.hit,
        trajectory=traj,
        marks=marks,
        mark_scores=mark_scores,
        mark_lane=mark_lane,
        crop_confusion=confusion,
        crops_unmatched=int((~shows).sum()),
        row_ends_seen=ends_seen,
        frames=frames,
        crops=crops,
        plan_label_accuracy=float(plan_correct.mean()) if hit.any() else float("nan"),
        off_types=int(off.sum()),
        off_types_called_fertile=int((off & (predicted == 1)).sum()),
        sterile_called_fertile=int(((field_.plant_label == 0) & (predicted == 1)).sum()),
        plan_camera=score_labeller(both, match, field_.plant_label, off),
        off_type_threshold=float(off_type_threshold),
        mark_prob=mark_prob,
        sighting_prob=seen_probs,
        sighting_truth=np.array(
            [int(field_.plant_label[k]) if k >= 0 else -1 for k in seen_plant], dtype=np.int64
        ),
        sighting_off_type=np.array([k >= 0 and bool(off[k]) for k in seen_plant], dtype=bool),
    )


def lane_calls(marks: np.ndarray, mark_lane: np.ndarray, n_rows: int) -> np.ndarray:
    """Each row's call (``n_rows``,): the majority label of the marks (M, 3: x, y, label) made from
    its lane (``mark_lane``, M) — 1 male, 0 female, −1 no marks or a tie. What the robot itself
    can say; the one definition both the score and :func:`row_calls` use."""
    calls = np.full(n_rows, -1, dtype=np.int64)
    for r in range(n_rows):
        votes = marks[mark_lane == r, 2]
        males, females = int((votes == 1).sum()), int((votes == 0).sum())
        if males != females:
            calls[r] = int(males > females)
    return calls


def row_calls(field_: Field, result: MissionResult):
    """Per row: its line, the plants in it, the marks made from its lane (male/female) and the
    majority call (:func:`lane_calls`; "—" for none or a tie), as a DataFrame."""
    import pandas as pd

    calls = lane_calls(result.marks, result.mark_lane, field_.n_rows)
    out = []
    for r in range(field_.n_rows):
        votes = result.marks[result.mark_lane == r, 2]
        out.append(
            {
                "row": r,
                "line": LABELS[field_.lines[r]],
                "plants": int((field_.plant_row == r).sum()),
                "marked female": int((votes == 0).sum()),
                "marked male": int((votes == 1).sum()),
                "call": "—" if calls[r] < 0 else LABELS[calls[r]],
                "correct": bool(calls[r] == field_.lines[r]),
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


def labeller_sweep(field_: Field, result: MissionResult, thresholds):
    """The plan+camera labeller (:func:`~fieldnotes.robot.marks.plan_camera_labels`) over
    ``thresholds`` on one mission's marks, beside the camera alone and the plan alone: a DataFrame
    indexed by labeller with label accuracy, off-types found (of the plot's), sterile plants
    called fertile (false alarms) and fertile plants called sterile."""
    import pandas as pd

    thresholds = [float(t) for t in thresholds]
    if not thresholds:
        raise ValueError("thresholds must hold at least one value in [0.5, 1]")
    match = match_marks(result.marks[:, :2], field_.plant_xy, MARK_RADIUS_M)
    off = field_.off_types
    rows = {"camera alone": result.marks[:, 2].astype(np.int64)}
    rows["plan alone"] = field_.lines[result.mark_lane]
    for t in thresholds:
        rows[f"plan + camera, P ≥ {t:g}"] = plan_camera_labels(
            result.mark_lane, result.mark_prob, field_.lines, t
        )
    table = {
        name: dataclasses.asdict(score_labeller(labels, match, field_.plant_label, off))
        for name, labels in rows.items()
    }
    return pd.DataFrame(table).T


def crop_report(result: MissionResult, train_images=None, train_labels=None) -> dict:
    """The side camera's crops as scored against the plants they truly show: accuracy, the
    majority-class baseline's (every crop called the commoner line), the two mistakes' counts
    (fertile called sterile split into male-row plants and off-types), which is more common (in
    words), the crops of no plant, the CNN's calibration
    error on them (:func:`~fieldnotes.robot.classifier.expected_calibration_error`) and, given the
    close-ups it was trained on, the colour-histogram baseline's accuracy on the crops the mission
    kept (``MissionConfig.keep_crops``)."""
    from fieldnotes.robot.classifier import expected_calibration_error, histogram_baseline

    cm = result.crop_confusion
    sees = result.sighting_truth >= 0
    ece, _ = expected_calibration_error(result.sighting_prob[sees], result.sighting_truth[sees])
    more = (
        "fertile flowers called sterile"
        if cm[1, 0] > cm[0, 1]
        else "sterile flowers called fertile"
        if cm[0, 1] > cm[1, 0]
        else "neither: the two are equally common"
    )
    called_sterile = sees & (result.sighting_truth == 1) & (result.sighting_prob < 0.5)
    off_type = result.sighting_off_type if len(result.sighting_off_type) else np.zeros_like(sees)
    report = {
        "crop_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "crop_majority_accuracy": float(cm.sum(axis=1).max() / max(cm.sum(), 1)),
        "crop_fertile_as_sterile": int(cm[1, 0]),
        "crop_male_row_as_sterile": int((called_sterile & ~off_type).sum()),
        "crop_off_type_as_sterile": int((called_sterile & off_type).sum()),
        "crop_sterile_as_fertile": int(cm[0, 1]),
        "crop_more_common": more,
        "crops_of_no_plant": int(result.crops_unmatched),
        "crop_ece": ece,
    }
    if train_images is not None:
        shown = [(c, t) for c, _, t in result.crops if t >= 0]
        if not shown:
            raise ValueError("the mission kept no crops of a plant; set MissionConfig.keep_crops")
        guess = histogram_baseline(train_images, train_labels, np.stack([c for c, _ in shown]))
        report["crop_baseline_accuracy"] = float((guess == np.array([t for _, t in shown])).mean())
    return report


def lane_entry_error_m(field_: Field, result: MissionResult) -> float:
    """The estimate's error along the rows (m, RMS over the lanes after a headland turn) where the
    robot's true centre passes each row's first planting position: what a turn leaves in ``y``
    when the lane's plants begin; nan with fewer than two lanes driven."""
    traj = result.trajectory
    errors = []
    for lane in range(1, field_.n_rows):
        on = traj[traj[:, 4] == lane]
        if not len(on):
            continue
        first = field_.planted_ends_m[0] if lane % 2 == 0 else field_.planted_ends_m[1]
        k = int(np.argmin(np.abs(on[:, 2] - first)))
        errors.append(on[k, 6] - on[k, 2])
    return float(np.sqrt(np.mean(np.square(errors)))) if errors else float("nan")


def sweep_trade_words(table) -> str:
    """In words, whether :func:`labeller_sweep`'s plan+camera rows show the trade a threshold
    makes on this run's marks: off-types found and false alarms both never rising as the
    threshold rises (and changing at all), or not."""
    rows = table[[name.startswith("plan + camera") for name in table.index]]
    found = rows["off_types_found"].to_numpy(float)
    alarms = rows["sterile_called_fertile"].to_numpy(float)
    if len(rows) < 2:
        raise ValueError(f"the table must hold at least two plan + camera rows, got {len(rows)}")
    steady = bool((np.diff(found) <= 0).all() and (np.diff(alarms) <= 0).all())
    if steady and (found[0] > found[-1] or alarms[0] > alarms[-1]):
        return (
            "read down the thresholds, it shows the trade: a lower threshold lets the camera "
            "overrule the plan more often — as many off-types found or more, and as many false "
            "alarms or more"
        )
    if steady:
        return "the threshold changes neither count, so the trade does not show"
    return (
        "the counts do not move together with the threshold, so this one plot does not show the "
        "trade cleanly"
    )


def ablation_words(
    result: MissionResult, no_slide: MissionResult, no_fix: MissionResult
) -> dict:
    """The page's comparison of a mission with the same mission without the calibrated slide
    model (``no_slide``) and without the row-end fix (``no_fix``): localisation RMSE and its part
    along the rows (m), the marks on their own plant, and each comparison in words."""
    from fieldnotes.robot.localisation import row_end_fix_verdict

    def along(r: MissionResult) -> float:
        return float(np.sqrt(np.mean((r.trajectory[:, 6] - r.trajectory[:, 2]) ** 2)))

    own, own_nofix = result.mark_scores.own_plant_rate, no_fix.mark_scores.own_plant_rate
    return {
        "loc_noslide_m": no_slide.localisation_rmse_m,
        "loc_y_noslide_m": along(no_slide),
        "slide_effect": row_end_fix_verdict(
            result.localisation_rmse_m, no_slide.localisation_rmse_m
        ),
        "loc_y_nofix_m": along(no_fix),
        "own_nofix": own_nofix,
        "fix_effect_y": row_end_fix_verdict(along(result), along(no_fix)),
        "fix_effect_marks": "more" if own > own_nofix else "not more",
    }
