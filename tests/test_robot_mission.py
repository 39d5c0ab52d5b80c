"""Whole missions in PyBullet, the footprint test, and the files a mission writes."""

import dataclasses
import json
import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.robot.drive import PyBulletBackend
from fieldnotes.robot.field import make_field
from fieldnotes.robot.localisation import PoseEkf
from fieldnotes.robot.mission import (
    MissionConfig,
    Referee,
    RowEnd,
    footprint_hits,
    lane_calls,
    lane_x,
    row_calls,
    run_mission,
    write_mission,
)


@given(
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.floats(-math.pi, math.pi),
    st.floats(-2, 2),
    st.floats(-2, 2),
)
def test_footprint_matches_a_rotation_matrix(x, y, yaw, px, py):
    R = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    local = R.T @ (np.array([px, py]) - [x, y])
    ox = max(abs(local[0]) - 0.5, 0)
    oy = max(abs(local[1]) - 0.3, 0)
    expect = math.hypot(ox, oy) < 0.07
    got = footprint_hits((x, y, yaw), np.array([[px, py]]), 1.0, 0.6)[0]
    if abs(math.hypot(ox, oy) - 0.07) > 1e-9:
        assert got == expect


def test_lanes_are_left_of_their_rows():
    f = make_field(rows=4, row_spacing=1.5)
    assert [lane_x(f, i) for i in range(4)] == pytest.approx([-0.75, 0.75, 2.25, 3.75])


RENDER_POSE_READERS = {
    ("fieldnotes.robot.drive", "PyBulletBackend.camera_image"),
    ("fieldnotes.robot.drive", "PyBulletBackend.side_camera_image"),
    ("fieldnotes.robot.mission", "Referee.record"),
    ("fieldnotes.robot.mission", "Referee.sighted"),
}
"""The only code that may read the true pose through ``render_pose()``: the cameras, to place
their view, and the referee, to score the run."""


class BlindfoldedHusky(PyBulletBackend):
    """The simulator with its true pose taken away: a mission that steers or estimates by the
    truth fails. ``pose()`` raises, and so does ``render_pose()`` unless a camera renderer or the
    referee asks (a controller holding ``robot.backend`` cannot read the truth under that name)."""

    def pose(self):
        raise AssertionError("the mission read the simulator's true pose")

    def render_pose(self):
        caller = sys._getframe(1)
        who = (caller.f_globals.get("__name__"), caller.f_code.co_qualname)
        if who not in RENDER_POSE_READERS:
            raise AssertionError(f"{who[0]}.{who[1]} read the simulator's true pose (render_pose)")
        return super().render_pose()


@pytest.fixture(scope="module")
def small_mission():
    from fieldnotes.robot.classifier import train_classifier
    from fieldnotes.robot.plants import make_flower_dataset

    x, y = make_flower_dataset(800, seed=31)
    net, _ = train_classifier(x, y, epochs=3, seed=0)
    f = make_field(
        rows=3, plants_per_row=8, row_spacing=1.2, pattern="1:1", seed=4, off_type_fraction=0.3
    )
    result = run_mission(
        f, net, MissionConfig(keep_frames=5, keep_crops=10**6), make_backend=BlindfoldedHusky
    )
    return f, net, result


def test_the_blindfolded_husky_cannot_be_asked_where_it_is():
    with BlindfoldedHusky(None) as sim:
        for getter in (sim.pose, sim.render_pose):
            with pytest.raises(AssertionError, match="true pose"):
                getter()
        assert sim.camera_image().ndim == 3  # the cameras still render from the truth


def test_small_mission_completes_every_row_without_hitting_plants(small_mission):
    """With the book's sensor noise, steering only by encoders, gyro and camera."""
    f, _, r = small_mission
    assert r.rows_completed == 3
    assert r.row_ends_seen == 3
    # the estimate stays within a row spacing of the truth; it is reported, not hidden
    est_err = np.hypot(*(r.trajectory[:, 5:7] - r.trajectory[:, 1:3]).T)
    assert 0 < r.localisation_rmse_m == pytest.approx(np.sqrt(np.mean(est_err**2)))
    assert est_err.max() < f.row_spacing_m
    # marks found by the side camera, placed from the estimate, scored against the true plants
    s = r.mark_scores
    assert r.marks.shape == (s.marks, 3) and r.mark_lane.shape == (s.marks,)
    assert set(r.mark_lane) <= {0, 1, 2}
    assert 0 < s.matched <= f.n_plants and r.plants_marked == s.matched
    assert s.mark_recall == pytest.approx(s.matched / f.n_plants)
    assert s.mark_recall >= 0.8  # the camera finds the plants, not the plant list
    assert 0 <= s.own_plant_rate <= s.mark_precision
    # each plant is seen in about one to three side frames; each crop is scored on its own
    assert s.marks <= r.crop_confusion.sum() + r.crops_unmatched <= 4 * f.n_plants
    assert r.crop_confusion.sum() >= s.matched
    assert r.plants_hit == 0 and not r.hit.any()
    assert r.cross_track_rmse_m < 0.08
    # correctly labelled matched marks over all plants: an unmarked plant counts as wrong
    assert r.marking_accuracy == pytest.approx((r.predicted == f.plant_label).mean())
    assert r.sim_seconds > 3 * f.row_length_m / 0.6  # it really drove three rows
    assert len(r.frames) >= 3
    # the path visits every lane
    for lane in range(3):
        on = r.trajectory[r.trajectory[:, 4] == lane]
        assert np.abs(on[:, 1] - lane_x(f, lane)).max() < f.row_spacing_m / 2


def test_the_three_labellers_are_scored_on_the_same_marks(small_mission):
    """Camera alone, plan alone and plan unless the camera is sure, each from the marks and the
    plants they matched; the off-types found and the sterile plants called fertile are counted
    (the plot has off-types, so the off-type path runs)."""
    from fieldnotes.robot.marks import match_marks, plan_camera_labels, score_labeller
    from fieldnotes.robot.mission import labeller_sweep

    f, _, r = small_mission
    assert r.off_types == int(f.off_types.sum()) > 0
    marked = r.predicted >= 0
    assert r.sterile_called_fertile == int((marked & (f.plant_label == 0) & (r.predicted == 1)).sum())
    assert r.off_types_called_fertile == int((f.off_types & (r.predicted == 1)).sum())
    match = match_marks(r.marks[:, :2], f.plant_xy, r.mark_scores.radius_m)
    labels = plan_camera_labels(r.mark_lane, r.mark_prob, f.lines, r.off_type_threshold)
    assert r.plan_camera == score_labeller(labels, match, f.plant_label, f.off_types)
    table = labeller_sweep(f, r, [0.5, 0.9])
    assert table.loc["camera alone", "label_accuracy"] == pytest.approx(
        r.mark_scores.label_accuracy
    )
    assert table.loc["plan alone", "label_accuracy"] == pytest.approx(r.plan_label_accuracy)
    assert table.loc["plan alone", "off_types_found"] == 0  # the plan knows none
    assert table.loc["plan + camera, P ≥ 0.9", "label_accuracy"] == pytest.approx(
        r.plan_camera.label_accuracy
    )
    summary = r.summary()
    for key in ("sterile_called_fertile", "plan_camera_label_accuracy",
                "plan_camera_off_types_found", "plan_camera_sterile_called_fertile"):
        assert key in summary
    with pytest.raises(ValueError, match="thresholds"):
        labeller_sweep(f, r, [])


def test_crop_report_baselines_and_the_split_of_fertile_called_sterile(small_mission):
    from fieldnotes.robot.mission import crop_report
    from fieldnotes.robot.plants import make_flower_dataset

    f, _, r = small_mission
    x, y = make_flower_dataset(200, seed=5)
    rep = crop_report(r, x, y)
    cm = r.crop_confusion
    assert rep["crop_majority_accuracy"] == pytest.approx(cm.sum(axis=1).max() / cm.sum())
    assert rep["crop_male_row_as_sterile"] + rep["crop_off_type_as_sterile"] == cm[1, 0]
    assert r.sighting_off_type.sum() > 0  # the off-types were seen
    assert 0 <= rep["crop_baseline_accuracy"] <= 1 and 0 <= rep["crop_ece"] <= 1


def test_ablation_words_follow_the_numbers(small_mission):
    from fieldnotes.robot.mission import ablation_words

    _, _, r = small_mission
    worse = dataclasses.replace(r, localisation_rmse_m=r.localisation_rmse_m + 0.3)
    w = ablation_words(r, worse, r)
    assert w["slide_effect"] == "smaller with it"
    assert w["loc_noslide_m"] == pytest.approx(r.localisation_rmse_m + 0.3)
    assert w["fix_effect_y"] == "not smaller with it" and w["fix_effect_marks"] == "not more"
    assert ablation_words(r, r, r)["slide_effect"] == "not smaller with it"


def test_lane_entry_error_is_read_where_each_row_begins(small_mission):
    """A made-up path whose estimate is 0.1 m ahead in lane 1 and 0.2 m behind in lane 2 where
    their rows begin (and off elsewhere): the RMS of those two, lane 0 (no turn before it) left out."""
    from fieldnotes.robot.mission import lane_entry_error_m

    f, _, r = small_mission
    rows = []
    for lane, at_start in ((0, 0.5), (1, 0.1), (2, -0.2)):
        first = f.planted_ends_m[0] if lane % 2 == 0 else f.planted_ends_m[1]
        for y in np.linspace(-1.0, f.row_length_m + 1.0, 241):
            err = at_start if abs(y - first) < 0.03 else 0.7
            rows.append((0.0, lane_x(f, lane), y, 0.0, lane, lane_x(f, lane), y + err, 0.0))
    made_up = dataclasses.replace(r, trajectory=np.array(rows))
    assert lane_entry_error_m(f, made_up) == pytest.approx(math.sqrt((0.1**2 + 0.2**2) / 2))
    assert math.isnan(lane_entry_error_m(f, dataclasses.replace(r, trajectory=np.zeros((0, 8)))))


def test_sweep_trade_words_follow_the_table():
    import pandas as pd

    from fieldnotes.robot.mission import sweep_trade_words

    def table(found, alarms):
        names = ["camera alone", "plan alone"] + [f"plan + camera, P ≥ {t}" for t in (0.5, 0.9)]
        return pd.DataFrame(
            {"off_types_found": [9, 0, *found], "sterile_called_fertile": [9, 0, *alarms]},
            index=names,
        )

    assert sweep_trade_words(table((3, 2), (4, 1))).startswith("read down the thresholds")
    assert "neither count" in sweep_trade_words(table((2, 2), (1, 1)))
    assert "do not move together" in sweep_trade_words(table((2, 3), (4, 1)))
    with pytest.raises(ValueError, match="two plan"):
        sweep_trade_words(table((2, 3), (4, 1)).iloc[:3])


def test_row_calls_and_written_files(small_mission, tmp_path):
    f, _, r = small_mission
    calls = row_calls(f, r)
    assert len(calls) == 3 and calls["plants"].sum() == f.n_plants
    assert int(calls["correct"].sum()) == r.rows_called_correctly
    write_mission(f, r, tmp_path)
    data = json.loads((tmp_path / "mission.json").read_text())
    for key in (
        "rows_completed",
        "plants",
        "marking_accuracy",
        "plants_hit",
        "cross_track_rmse_m",
        "localisation_rmse_m",
        "mark_precision",
        "mark_recall",
        "label_accuracy",
        "sim_seconds",
        "wall_seconds",
    ):
        assert key in data
    assert data["rows_completed"] == 3
    assert (tmp_path / "field.png").stat().st_size > 10_000


def test_bad_config():
    f = make_field(rows=1, plants_per_row=4)
    with pytest.raises(ValueError, match="camera_every"):
        run_mission(f, None, MissionConfig(camera_every=0))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="row_start_view_m"):
            run_mission(f, None, MissionConfig(row_start_view_m=bad))
    # refused when the config is built, not at scoring after the whole mission
    for bad in (float("nan"), 0.3, 1.5):
        with pytest.raises(ValueError, match="off_type_threshold"):
            MissionConfig(off_type_threshold=bad)


def _gapped_field(rows=2, plants_per_row=12, gap=(4, 5), seed=0, row=0):
    """A field whose row ``row`` misses planting positions ``gap`` (mid-row, or an end): the rows
    ahead run out at the gap as they do at the row's end."""
    f = make_field(rows=rows, plants_per_row=plants_per_row, seed=seed, gap_fraction=0.0)
    pitch = f.pitch_m
    drop = (f.plant_row == row) & np.isin(np.floor(f.plant_xy[:, 1] / pitch).astype(int), gap)
    keep = ~drop
    return dataclasses.replace(
        f,
        plant_xy=f.plant_xy[keep],
        plant_row=f.plant_row[keep],
        plant_label=f.plant_label[keep],
        plant_seed=f.plant_seed[keep],
        gaps=int(drop.sum()),
    )


def test_row_end_sets_a_gap_aside_and_fuses_one_fix_per_row_end():
    """A reading 5 m short of the plan's last plant is a gap, not the end; the end's readings,
    however many frames saw them, make one fix (their errors are shared)."""
    ekf = PoseEkf((0.0, 0.0, math.pi / 2))
    ekf.cov[1, 1] = 0.5**2  # after a headland turn
    end = RowEnd(last_planted_y=9.75, direction=1, gate_m=1.0)
    assert not end.offer(ekf, 4.75 - 0.0, 0.08) and not end.seen  # a gap at y ≈ 4.75
    ekf.state[1] = 8.0  # odometry: 8 m along, the truth is 8.3 m
    for ahead in (1.45, 1.46, 1.44):
        assert end.offer(ekf, ahead, 0.08)
    assert end.rejected == 1 and end.end_along() == pytest.approx(9.45)
    assert end.fuse(ekf, 0.08)
    assert ekf.along_fixes_used == 1
    assert 8.25 < ekf.pose()[1] < 8.3  # pulled most of the 0.3 m
    # coming back down (direction −1) the row's last plant is its first planting position
    down = RowEnd(last_planted_y=0.25, direction=-1, gate_m=1.0)
    ekf2 = PoseEkf((0.0, 6.0, -math.pi / 2))
    assert not down.offer(ekf2, 1.5, 0.08)  # ends at y 4.5: 4.25 m short of the plan's 0.25
    with pytest.raises(ValueError, match="row_end_gate_m"):
        RowEnd(0.25, 1, float("nan"))
    with pytest.raises(ValueError, match="no reading"):
        down.end_along()


def test_row_end_sets_aside_a_missing_last_plant():
    """The row's last plant is missing: the rows ahead run out one pitch (0.5 m) short of the
    plan's end. With odometry as sure of y as after a calibrated turn and a 10 m lane, that is
    beyond its own uncertainty: set aside, not fused as a 0.5 m fix. Within it, a reading is
    taken, in either direction."""
    ekf = PoseEkf((0.0, 8.0, math.pi / 2))
    ekf.cov[1, 1] = 0.17**2  # a lane's distance random walk and a U-turn's residual slide
    end = RowEnd(last_planted_y=9.75, direction=1, gate_m=1.0)
    assert not end.offer(ekf, 1.25, 0.08)  # the last plant seen at 9.25: a plant missing
    assert end.offer(ekf, 1.65, 0.08)  # 0.1 m short: the odometry's own error
    assert end.offer(ekf, 1.85, 0.08)  # 0.1 m beyond it
    down = RowEnd(last_planted_y=0.25, direction=-1, gate_m=1.0)
    ekf2 = PoseEkf((0.0, 2.0, -math.pi / 2))
    ekf2.cov[1, 1] = 0.17**2
    assert not down.offer(ekf2, 1.25, 0.08)  # seen at 0.75: the first position is empty
    assert down.offer(ekf2, 1.7, 0.08)
    with pytest.raises(ValueError, match="row_end_sigmas"):
        RowEnd(0.25, 1, 1.0, sigmas=0.0)


@pytest.mark.parametrize("lane", [0, 1])
def test_a_missing_last_plant_does_not_end_the_row_early(small_mission, lane):
    """Row ``lane``'s last plant in its lane's driving direction is missing (the top one in lane
    0, the bottom one in lane 1, a middle lane of three): the robot does not take the row end for
    one pitch early, completes every row, hits nothing, and its marks stay on their own plants."""
    _, net, _ = small_mission
    last = 9 if lane == 0 else 0  # of 10 planting positions
    f = _gapped_field(rows=3, plants_per_row=10, gap=(last,), seed=2, row=lane)
    r = run_mission(f, net, MissionConfig(), make_backend=BlindfoldedHusky)
    assert r.rows_completed == 3 and r.plants_hit == 0
    on = r.trajectory[r.trajectory[:, 4] == lane]
    beyond = on[:, 2].max() - f.row_length_m if lane == 0 else -on[:, 2].min()
    assert beyond > 0.75  # drove the headland past the plan's end, not a pitch short of it
    assert r.mark_scores.own_plant_rate >= 0.9


def _enter_lane_0(field_, y_error_m: float, start_sd_m: float, row_start_view_m: float = 0.9):
    """Lane 0 driven from the headland by a robot whose estimate puts it ``y_error_m`` (m) farther
    along than it is, as a headland turn's slide leaves it, with that uncertainty (``start_sd_m``);
    the field's weeds pulled (one on a row line before the first plant also reads as the rows'
    start). Returns the lane's run and (true y, estimated y) per tick."""
    from fieldnotes.robot.drive import Program
    from fieldnotes.robot.localisation import EkfSettings, SensedRobot
    from fieldnotes.robot.mission import drive_lane
    from fieldnotes.robot.sensing import Sensors, noise_preset

    cfg = MissionConfig(row_start_view_m=row_start_view_m)
    x0 = lane_x(field_, 0)
    path = []
    field_ = dataclasses.replace(field_, weed_xy=np.zeros((0, 2)))
    with BlindfoldedHusky(field_, start=(x0, -1.25, math.pi / 2)) as sim:
        sensors = Sensors(sim, noise_preset("none"), seed=3)
        settings = EkfSettings(start_sd_m=start_sd_m)
        robot = SensedRobot(sim, sensors, (x0, -1.25 + y_error_m, math.pi / 2), settings=settings)
        program = Program(robot, speed=0.6, turn_rate=0.8)
        robot.calibrate(1.0, 0.1)
        truth = PyBulletBackend.render_pose  # this test referees: it reads past the blindfold
        run = drive_lane(
            robot, program, field_, 0, cfg, 120.0,
            lambda: path.append((truth(sim)[1], robot.pose()[1])), [], [],
        )  # fmt: skip
    return run, np.asarray(path)


@pytest.mark.parametrize("y_error_m", [0.2, -0.2])
def test_lane_entry_fixes_y_from_where_the_rows_begin(y_error_m):
    """After a headland turn the estimate is off along the rows by the slide's unpredicted part;
    the forward camera sees where the rows begin from the headland, so by the row's first plant
    the estimate is right again — without that fix it stays off until the row's far end."""
    f = make_field(rows=2, plants_per_row=12, seed=0, gap_fraction=0.0)
    run, path = _enter_lane_0(f, y_error_m, start_sd_m=0.2)  # as uncertain as after a turn
    assert run.saw_start and run.start_fixed
    first = np.argmin(np.abs(path[:, 0] - f.planted_ends_m[0]))
    assert abs(path[first, 1] - path[first, 0]) < 0.07
    _, unfixed = _enter_lane_0(f, y_error_m, start_sd_m=0.2, row_start_view_m=math.inf)
    assert abs(unfixed[first, 1] - unfixed[first, 0]) > 0.15


def test_a_missing_first_plant_is_not_taken_for_the_rows_start():
    """Row 0's first plant is missing, so the rows seen from lane 0 begin a pitch late: those
    readings are set aside, and y is not moved by a pitch."""
    f = _gapped_field(rows=2, plants_per_row=12, gap=(0,), seed=0, row=0)
    run, path = _enter_lane_0(f, 0.0, start_sd_m=0.05)
    assert run.saw_start is False and not run.start_fixed
    first = np.argmin(np.abs(path[:, 0] - f.planted_ends_m[0]))
    assert abs(path[first, 1] - path[first, 0]) < 0.1


class _StubSim:
    """Just enough simulator for the referee: a true pose and a clock."""

    def __init__(self, pose):
        self.pose_, self.time_s = pose, 0.0

    def render_pose(self):
        return self.pose_


class _StubRobot:
    def __init__(self, geometry):
        self.geometry = geometry

    def pose(self):
        return (0.0, 0.0, 0.0)


def test_referee_completes_a_row_only_when_the_robot_drove_its_whole_length():
    """A lane started mid-row (after an early U-turn) passes no plant behind its start: it is not
    complete, however far it goes on; a lane driven from before the first plant past the last is."""
    from fieldnotes.robot.drive import HUSKY

    f = make_field(rows=2, plants_per_row=10, seed=0, gap_fraction=0.0)
    x1 = lane_x(f, 1)
    sim = _StubSim((x1, 4.0, -math.pi / 2))
    ref = Referee(f, sim, _StubRobot(HUSKY))
    ref.start_lane(1, -1)
    for y in np.arange(4.0, -1.5, -0.1):  # from mid-row down past the row's start
        sim.pose_ = (x1, y, -math.pi / 2)
        ref.record()
    assert not ref.lane_done()
    ref.start_lane(0, 1)
    x0 = lane_x(f, 0)
    for y in np.arange(-1.0, f.row_length_m + 1.0, 0.1):
        sim.pose_ = (x0, y, math.pi / 2)
        ref.record()
    assert ref.lane_done()


def test_a_gap_in_the_planting_does_not_end_the_row(small_mission):
    """Row 0 misses two plants mid-row: the robot drives on past the gap to the row's real end,
    completes both rows and hits nothing (the first edition's camera-only row end U-turned at
    the gap)."""
    _, net, _ = small_mission
    f = _gapped_field()
    r = run_mission(f, net, MissionConfig(), make_backend=BlindfoldedHusky)
    assert r.rows_completed == 2 and r.plants_hit == 0
    assert r.row_end_readings_set_aside > 0  # the gap was seen and set aside
    lane0 = r.trajectory[r.trajectory[:, 4] == 0]
    assert lane0[:, 2].max() > f.row_length_m  # truly drove past the row's end
    assert r.mark_scores.mark_recall >= 0.8


def test_one_definition_of_the_row_call(small_mission):
    f, _, r = small_mission
    calls = lane_calls(r.marks, r.mark_lane, f.n_rows)
    assert int((calls == f.lines).sum()) == r.rows_called_correctly
    table = row_calls(f, r)
    assert list(table["correct"]) == list(calls == f.lines)
    marks = np.array([[0, 0, 1], [0, 1, 0], [0, 2, 1], [1, 0, 0], [1, 1, 1]], float)
    assert list(lane_calls(marks, np.array([0, 0, 0, 1, 1]), 3)) == [1, -1, -1]


def test_max_sim_seconds_must_be_a_positive_finite_number():
    f = make_field(rows=1, plants_per_row=4)
    for bad in (float("nan"), 0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="max_sim_seconds"):
            run_mission(f, None, MissionConfig(max_sim_seconds=bad))
