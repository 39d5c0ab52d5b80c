"""The side camera: projection, flowers found in rendered frames, sightings joined into marks."""

import math

import numpy as np
import pytest

from fieldnotes.robot.drive import PyBulletBackend
from fieldnotes.robot.field import make_field
from fieldnotes.robot.mission import lane_x
from fieldnotes.robot.plants import plant_image
from fieldnotes.robot.side_camera import (
    FlowerTracks,
    SideCamera,
    find_flowers,
    pixels_to_plane,
    plane_to_pixels,
    side_view,
    to_world,
)


@pytest.mark.parametrize("side", [-1, 1])
def test_plane_projection_round_trips(side):
    cam = SideCamera()
    rows, cols = np.meshgrid(np.arange(0, cam.height, 9.0), np.arange(0, cam.width, 13.0))
    gx, gy = pixels_to_plane(rows.ravel(), cols.ravel(), cam, side)
    assert np.all(np.sign(gy) == side)  # it looks to its own side
    r2, c2 = plane_to_pixels(gx, gy, cam, side)
    assert np.allclose(r2, rows.ravel(), atol=1e-6) and np.allclose(c2, cols.ravel(), atol=1e-6)
    # the image centre looks at the aim point
    cx, cy = pixels_to_plane(
        np.array([cam.height / 2 - 0.5]), np.array([cam.width / 2 - 0.5]), cam, side
    )
    assert cx[0] == pytest.approx(0.0, abs=1e-9) and cy[0] == pytest.approx(side * cam.aim_m)


@pytest.fixture(scope="module")
def beside_a_row():
    """A Husky in lane 0 facing up the rows, looking right at row 0 with its side camera."""
    f = make_field(rows=2, plants_per_row=8, pattern="1:1", seed=4)
    with PyBulletBackend(f, start=(lane_x(f, 0), 1.6, math.pi / 2)) as sim:
        frame = sim.side_camera_image(-1)
        pose = sim.render_pose()
    return f, frame, pose


def test_flowers_are_found_in_the_frame_where_the_plants_stand(beside_a_row):
    f, frame, pose = beside_a_row
    cam = SideCamera()
    found = find_flowers(frame, cam, -1)
    assert len(found) >= 1
    row0 = f.plant_xy[f.plant_row == 0]
    for s in found:
        wx, wy = to_world(pose, s.x_m, s.y_m)
        # on the inspected row, within 4 cm of a plant (the close-up's flower sits near its centre)
        assert np.hypot(row0[:, 0] - wx, row0[:, 1] - wy).min() < 0.04
        assert s.crop.shape == (64, 64, 3) and s.crop.dtype == np.uint8
    # every plant whose flower head lies well inside the view is found
    gx = np.cos(-pose[2]) * (row0[:, 0] - pose[0]) - np.sin(-pose[2]) * (row0[:, 1] - pose[1])
    inside = np.abs(gx) < 0.15
    assert len(found) >= inside.sum()


def test_the_crop_is_the_plants_own_close_up(beside_a_row):
    """The textures are the generator's images: the crop of a plant correlates best with it."""
    f, frame, pose = beside_a_row
    found = find_flowers(frame, SideCamera(), -1)
    s = max(found, key=lambda q: q.area_px)
    wx, wy = to_world(pose, s.x_m, s.y_m)
    ids = np.flatnonzero(f.plant_row == 0)
    k = ids[np.argmin(np.hypot(f.plant_xy[ids, 0] - wx, f.plant_xy[ids, 1] - wy))]

    def yellow_share(img):
        x = img.astype(float) / 255
        return float(((np.minimum(x[..., 0], x[..., 1]) - x[..., 2]) > 0.25).mean())

    # about as much petal in the crop as in the plant's close-up (not a neighbour's, not the soil)
    assert yellow_share(s.crop) == pytest.approx(yellow_share(plant_image(f, int(k))), abs=0.12)


def test_no_flowers_on_bare_soil():
    with PyBulletBackend(None, start=(0, 0, 0)) as sim:
        frame = sim.side_camera_image(1)
    assert find_flowers(frame, SideCamera(), 1) == []


def test_tracks_join_sightings_of_one_plant_and_keep_neighbours_apart():
    t = FlowerTracks(merge_m=0.2)
    assert t.add(0.0, 1.0, 0.9) == t.add(0.02, 1.05, 0.7) == 0
    assert t.add(0.0, 1.5, 0.1) == 1  # the next plant, a pitch along
    marks = t.marks()
    assert marks.shape == (2, 3)
    assert marks[0] == pytest.approx([0.01, 1.025, 1.0])
    assert marks[1, 2] == 0.0
    assert t.mean_prob() == pytest.approx([0.8, 0.1])
    assert t.sighting_track == [0, 0, 1]


def test_bad_inputs_are_refused():
    cam = SideCamera()
    with pytest.raises(ValueError, match="side"):
        side_view((0, 0, 0), cam, 0)
    with pytest.raises(ValueError, match="rgb has shape"):
        find_flowers(np.zeros((10, 10, 3), np.uint8), cam, 1)
    with pytest.raises(ValueError, match="fov_deg"):
        SideCamera(fov_deg=0)
    with pytest.raises(ValueError, match="mount_height_m"):
        SideCamera(mount_height_m=0.1)
    with pytest.raises(ValueError, match="merge_m"):
        FlowerTracks(merge_m=float("nan"))


def test_settling_moves_each_sighting_by_its_share_of_the_correction_made_after_it():
    t = FlowerTracks(merge_m=0.2)
    t.add(0.0, 1.0, 0.9, tag=(0.0, 8.0))  # placed before the fix, after 8 of its 10 m of travel
    t.add(0.0, 3.0, 0.9, tag=(0.5, 0.0))  # placed after the fix: nothing to correct
    t.settle(0.5, 10.0)
    assert t.marks()[:, 1] == pytest.approx([1.4, 3.0])
    t.settle(0.5, 10.0)  # settling twice at the same correction moves nothing
    assert t.marks()[:, 1] == pytest.approx([1.4, 3.0])
    with pytest.raises(ValueError, match="fix_travel_m"):
        t.settle(0.5, float("nan"))


def test_settling_undoes_a_wheel_scale_error_along_the_whole_lane():
    """The encoders over-count by 3 % (a per-run scale error, as the ``high`` preset can draw):
    a plant's estimated y is off by 3 % of the travel to it. The fix at the lane's end measures
    the whole 0.3 m; every sighting lands back within 1 cm of its plant, the first as well as the
    last (a constant shift would leave the first 0.3 m off, beyond the 0.25 m mark radius)."""
    scale, travel_to_first = 0.03, 0.5
    plants = np.arange(0.25, 10.0, 0.5)
    t = FlowerTracks(merge_m=0.2)
    for y in plants:
        travel = travel_to_first + y
        t.add(0.0, y + scale * travel, 0.9, tag=(0.0, travel))
    lane_travel = travel_to_first + 10.0
    t.settle(-scale * lane_travel, lane_travel)
    assert np.abs(t.marks()[:, 1] - plants).max() < 0.01
