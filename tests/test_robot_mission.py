"""Whole missions in PyBullet, the footprint test, and the files a mission writes."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.robot.drive import PyBulletBackend
from fieldnotes.robot.field import make_field
from fieldnotes.robot.mission import (
    MissionConfig,
    footprint_hits,
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


class BlindfoldedHusky(PyBulletBackend):
    """The simulator with its true-pose getter taken away: a mission that steers by the truth fails."""

    def pose(self):
        raise AssertionError("the mission read the simulator's true pose")


@pytest.fixture(scope="module")
def small_mission():
    from fieldnotes.robot.classifier import train_classifier
    from fieldnotes.robot.plants import make_flower_dataset

    x, y = make_flower_dataset(800, seed=31)
    net, _ = train_classifier(x, y, epochs=3, seed=0)
    f = make_field(rows=3, plants_per_row=8, row_spacing=1.2, pattern="1:1", seed=4)
    result = run_mission(f, net, MissionConfig(keep_frames=5), make_backend=BlindfoldedHusky)
    return f, net, result


def test_the_blindfolded_husky_cannot_be_asked_where_it_is():
    with BlindfoldedHusky(None) as sim, pytest.raises(AssertionError, match="true pose"):
        sim.pose()


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
