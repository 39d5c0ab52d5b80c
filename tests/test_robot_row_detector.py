"""Crop-row detection: excess green, Otsu, the ground projection, line fits, the whole detector."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.robot import row_detector as V


def test_excess_green_is_computed_in_float():
    px = np.array([[[10, 200, 10], [255, 0, 255]]], dtype=np.uint8)
    exg = V.excess_green(px)
    assert exg[0, 0] == pytest.approx((400 - 20) / 255)
    assert exg[0, 1] == pytest.approx(-2.0)  # uint8 arithmetic would have wrapped


def test_otsu_agrees_with_scikit_image():
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(-0.1, 0.05, 3000), rng.normal(0.5, 0.1, 800)])
    ours = V.otsu_threshold(v)
    theirs = threshold_otsu(v, nbins=256)
    assert ours == pytest.approx(theirs, abs=2 * (v.max() - v.min()) / 256)
    with pytest.raises(ValueError, match="empty"):
        V.otsu_threshold(np.array([]))


def test_pixel_to_ground_inverts_pybullets_projection():
    import pybullet as p

    cam = V.Camera()
    cid = p.connect(p.DIRECT)
    try:
        pitch = math.radians(cam.pitch_deg)
        eye = [cam.forward_m, 0, cam.mount_height_m]
        target = [eye[0] + math.cos(pitch), 0, eye[2] - math.sin(pitch)]
        up = [math.sin(pitch), 0, math.cos(pitch)]
        view = np.array(p.computeViewMatrix(eye, target, up, physicsClientId=cid)).reshape(4, 4).T
        proj = (
            np.array(
                p.computeProjectionMatrixFOV(
                    cam.fov_deg, cam.width / cam.height, cam.near_m, cam.far_m, physicsClientId=cid
                )
            )
            .reshape(4, 4)
            .T
        )
    finally:
        p.disconnect(cid)
    rng = np.random.default_rng(2)
    pts = np.stack(
        [
            rng.uniform(1, 4, 50),
            rng.uniform(-1, 1, 50),
            np.full(50, cam.plane_height_m),
            np.ones(50),
        ]
    )
    q = proj @ view @ pts
    q = q[:3] / q[3]
    cols = (q[0] + 1) / 2 * cam.width - 0.5
    rows = (1 - q[1]) / 2 * cam.height - 0.5
    inside = (cols > 0) & (cols < cam.width) & (rows > 0) & (rows < cam.height)
    gx, gy, ok = V.pixel_to_ground(rows[inside], cols[inside], cam)
    assert ok.all() and inside.sum() > 10
    assert np.allclose(gx, pts[0, inside], atol=1e-4) and np.allclose(gy, pts[1, inside], atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.floats(-1, 1), st.floats(-0.5, 0.5), st.integers(0, 10_000))
def test_robust_line_fit_ignores_outliers(a, b, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 4, 200)
    y = a + b * x + rng.normal(0, 0.01, 200)
    out = rng.random(200) < 0.2
    y[out] += rng.uniform(0.3, 1.0, out.sum()) * rng.choice([-1, 1], out.sum())
    fa, fb = V.robust_line_fit(x, y)
    assert fa == pytest.approx(a, abs=0.03) and fb == pytest.approx(b, abs=0.015)


@pytest.mark.parametrize("offset,heading", [(0.0, 0.0), (0.12, 0.0), (-0.1, 0.08), (0.05, -0.1)])
def test_detect_rows_against_the_simulators_ground_truth(offset, heading):
    from fieldnotes.robot.drive import PyBulletBackend
    from fieldnotes.robot.field import make_field

    f = make_field(rows=3, plants_per_row=16, seed=7, jitter=0.0, gap_fraction=0.0, weeds_per_row=1)
    lane = 0.5 * f.row_spacing_m  # between rows 0 and 1
    # robot heading +y; "left of centre" is −x
    start = (lane - offset, 0.5, math.pi / 2 + heading)
    with PyBulletBackend(f, start=start) as sim:
        x, _, yaw = sim.pose()
        est = V.detect_rows(sim.camera_image(), sim.camera, f.row_spacing_m)
    assert est.ok and est.left is not None and est.right is not None
    assert est.offset_m == pytest.approx(lane - x, abs=0.04)
    assert est.heading_rad == pytest.approx(yaw - math.pi / 2, abs=0.03)


def test_detect_rows_sees_nothing_on_bare_soil():
    img = np.zeros((96, 128, 3), np.uint8)
    img[...] = (115, 85, 56)
    est = V.detect_rows(img, V.Camera(), 1.2)
    assert not est.ok
