"""The EKF over encoders and gyro, and the robot that steers by it."""

import math

import numpy as np
import pytest

from fieldnotes.robot.drive import HUSKY, KinematicBackend, Program, square, wrap_angle
from fieldnotes.robot.localisation import EkfSettings, PoseEkf, SensedRobot
from fieldnotes.robot.sensing import SensorNoise, Sensors


def _robot(noise, seed=0, start=(0.0, 0.0, 0.0)):
    sim = KinematicBackend(HUSKY, start=start)
    return sim, SensedRobot(sim, Sensors(sim, noise, seed=seed), start)


def test_ideal_sensors_track_a_square_exactly():
    sim, robot = _robot(SensorNoise())
    run = square(Program(robot, speed=0.5, turn_rate=1.0), side_s=3.0)
    assert np.allclose(robot.pose()[:2], sim.pose()[:2], atol=0.01)
    assert abs(wrap_angle(robot.pose()[2] - sim.pose()[2])) < 0.01
    assert run.path.shape[1] == 3


def test_standing_still_learns_the_gyro_bias():
    noise = SensorNoise(gyro_bias_sd=0.02, gyro_noise_sd=0.01, ticks_per_rev=1024)
    errors = {}
    for calibrate in (False, True):
        sim, robot = _robot(noise, seed=4)
        bias = robot.sensors.gyro_bias_radps
        if calibrate:
            robot.calibrate(2.0)
            assert robot.ekf.state[3] == pytest.approx(bias, abs=0.003)
        program = Program(robot, speed=0.5)
        program.forward()
        for _ in range(300):  # 30 s straight
            robot.advance(0.1)
        errors[calibrate] = abs(wrap_angle(robot.pose()[2] - sim.pose()[2]))
    assert errors[False] == pytest.approx(abs(bias) * 30, rel=0.2)  # uncalibrated: bias × time
    assert errors[True] < 0.2 * errors[False]


def test_encoder_quantisation_and_slip_keep_distance_within_a_few_percent():
    sim, robot = _robot(SensorNoise(ticks_per_rev=256, slip_sd=0.1), seed=5)
    Program(robot, speed=0.6).forward()
    for _ in range(200):
        robot.advance(0.1)
    assert robot.pose()[0] == pytest.approx(sim.pose()[0], rel=0.02)


def test_lane_fix_corrects_x_and_yaw_but_not_the_bias_and_sets_aside_outliers():
    ekf = PoseEkf((0.0, 0.0, 0.0))
    ekf.cov[0, 0] = 0.2**2
    ekf.cov[2, 2] = 0.1**2
    ekf.cov[2, 3] = ekf.cov[3, 2] = 0.001
    assert ekf.lane_fix(0.1, 0.05)
    x, _, yaw = ekf.pose()
    assert 0.05 < x <= 0.1 and 0.0 < yaw <= 0.05
    assert ekf.state[3] == 0.0
    assert not ekf.lane_fix(3.0, 0.0)  # a lane away: set aside
    assert ekf.fixes_used == 1 and ekf.fixes_rejected == 1


def test_prediction_moves_along_the_heading():
    ekf = PoseEkf((1.0, 2.0, math.pi / 2))
    ekf.predict(0.5, 0.0, 0.1)
    assert ekf.pose() == pytest.approx((1.0, 2.5, math.pi / 2))
    before = ekf.cov.copy()
    ekf.predict(0.5, 0.0, 0.1)
    assert ekf.cov[1, 1] > before[1, 1]


def test_a_turn_in_place_widens_the_position_uncertainty_so_a_later_row_end_fix_is_accepted():
    """A skid-steer U-turn slides the robot: the filter predicts the calibrated mean slide and
    widens its uncertainty by the spread, or it would set aside the row end's fix that measures
    what is left of the slide."""
    wide = EkfSettings(turn_slide_sd=0.28, pivot_slide_left=(0.0, 0.0), pivot_slide_right=(0.0, 0.0))
    straight, turned = PoseEkf((0.0, 0.0, 0.0), wide), PoseEkf((0.0, 0.0, 0.0), wide)
    straight.predict(0.0, 0.0, 1.0)
    turned.predict(0.0, math.pi, 1.0, pivoting=True)
    slide_var = turned.settings.turn_slide_sd**2 * math.pi  # a random walk in the angle turned
    assert turned.cov[1, 1] == pytest.approx(straight.cov[1, 1] + slide_var)
    # a fix 0.6 m off: accepted after the turn and pulls most of the way, counted as a correction
    assert turned.along_fix(0.6, 0.08)
    assert 0.5 < turned.pose()[1] < 0.6
    assert turned.along_correction_m == pytest.approx(turned.pose()[1])
    assert turned.along_fixes_used == 1 and turned.state[3] == 0.0  # the bias is not taught
    # without the turn the same fix is five sigmas off and set aside
    assert not straight.along_fix(0.6, 0.08)
    assert straight.pose()[1] == 0.0 and straight.along_correction_m == 0.0
    with pytest.raises(ValueError, match="sd_m"):
        turned.along_fix(0.0, 0.0)
    # the same turn while driving (a lane's steering, not a spin in place) slides nothing
    steering = PoseEkf((0.0, 0.0, 0.0), wide)
    steering.predict(0.0, math.pi, 1.0)
    assert steering.cov[1, 1] == pytest.approx(straight.cov[1, 1])


@pytest.mark.parametrize("turn", [math.pi / 2, -math.pi / 2, math.pi])
def test_the_mean_slide_is_predicted_and_fit_back_from_its_calibration(turn):
    """Predicted in small steps, a turn in place moves the estimate by ``pivot_slide_m``; and
    :func:`fit_pivot_slide` recovers the per-radian slide from such turns' displacements."""
    from fieldnotes.robot.calibration import fit_pivot_slide

    settings = EkfSettings(pivot_slide_left=(-0.05, 0.3), pivot_slide_right=(-0.04, -0.31))
    ekf = PoseEkf((1.0, 2.0, 0.3), settings)
    for _ in range(200):
        ekf.predict(0.0, turn / 200, 0.01, pivoting=True)
    dx, dy = ekf.pivot_slide_m(0.3, turn)
    assert ekf.pose()[:2] == pytest.approx((1.0 + dx, 2.0 + dy), abs=2e-3)
    assert math.hypot(dx, dy) > 0.15 * abs(turn)  # it really moved
    if abs(turn) < math.pi:
        c, s = math.cos(0.3), math.sin(0.3)
        start_frame = np.array([c * dx + s * dy, -s * dx + c * dy])
        noisy = start_frame + np.array([[0.02, -0.01], [-0.02, 0.01], [0.0, 0.0]])
        per_rad, spread = fit_pivot_slide(noisy, turn)
        want = settings.pivot_slide_left if turn > 0 else settings.pivot_slide_right
        assert per_rad == pytest.approx(want, abs=1e-3) and 0 < spread < 0.03
    with pytest.raises(ValueError, match="displacements"):
        fit_pivot_slide(np.zeros((1, 2)), turn)


def test_the_calibration_run_reproduces_the_default_slide():
    """The simulated Husky's quarter turns from rest, measured afresh (4 each way), agree with the
    defaults the mission uses to within 5 cm per quarter turn: the slide is systematic."""
    from fieldnotes.robot.calibration import fit_pivot_slide, measure_turn_slide

    s = EkfSettings()
    for direction, default in ((1, s.pivot_slide_left), (-1, s.pivot_slide_right)):
        measured = measure_turn_slide(direction, turns=4)
        per_rad, spread = fit_pivot_slide(measured, direction * math.pi / 2)
        assert np.hypot(*(np.subtract(per_rad, default))) * math.pi / 2 < 0.05
        assert np.abs(measured - measured.mean(axis=0)).max() < 0.1  # repeats: 10 cm of 0.46 m
    with pytest.raises(ValueError, match="direction"):
        measure_turn_slide(0)


@pytest.mark.parametrize("what", ["straight", "u-turn"])
def test_motion_noise_does_not_depend_on_how_often_the_filter_predicts(what):
    """10 m driven or a U-turn, predicted in 10 steps or in 600 (the same 60 Hz gyro samples):
    the same uncertainty, and the stated one (sd·√distance, sd·√angle)."""
    h = 1 / 60  # physics step: the gyro's sample period (s)
    covs = []
    no_mean = EkfSettings(pivot_slide_left=(0.0, 0.0), pivot_slide_right=(0.0, 0.0))
    for steps in (10, 600):
        ekf = PoseEkf((0.0, 0.0, 0.0 if what == "straight" else math.pi / 2), no_mean)
        total_s = 20.0
        for _ in range(steps):
            dt = total_s / steps
            if what == "straight":
                ekf.predict(10.0 / steps, 0.0, dt, samples=round(dt / h))
            else:
                ekf.predict(0.0, math.pi / steps, dt, samples=round(dt / h), pivoting=True)
        covs.append(ekf.cov.copy())
    assert covs[0] == pytest.approx(covs[1], rel=0.02, abs=1e-9)
    s, start = EkfSettings(), EkfSettings().start_sd_m ** 2
    if what == "straight":
        # along the heading (x): the start's and the distance's random walk over 10 m
        assert covs[1][0, 0] == pytest.approx(start + s.distance_sd**2 * 10.0, rel=0.01)
    else:
        assert covs[1][0, 0] == pytest.approx(start + s.turn_slide_sd**2 * math.pi, rel=0.01)


def test_along_consistent_asks_the_gate_without_fusing():
    ekf = PoseEkf((0.0, 0.0, 0.0))
    before = ekf.cov.copy()
    assert ekf.along_consistent(0.1, 0.08) and not ekf.along_consistent(3.0, 0.08)
    assert (ekf.cov == before).all() and ekf.along_fixes_used == 0


def test_row_end_fix_verdict_follows_the_numbers():
    from fieldnotes.robot.localisation import row_end_fix_verdict

    assert row_end_fix_verdict(0.2, 0.4) == "smaller with it"
    assert row_end_fix_verdict(0.42, 0.31) == "not smaller with it"
    with pytest.raises(ValueError, match="finite"):
        row_end_fix_verdict(float("nan"), 0.3)


@pytest.mark.parametrize(
    "name,bad",
    [
        ("distance_sd", -1.0),
        ("lateral_sd", float("nan")),
        ("gyro_sd", -0.01),
        ("fix_offset_sd_m", float("inf")),
        ("turn_slide_sd", -0.05),
        ("gate", 0.0),
        ("along_gate", float("nan")),
        ("pivot_slide_left", (float("nan"), 0.3)),
    ],
)
def test_ekf_settings_refuse_negative_or_nan_noise(name, bad):
    with pytest.raises(ValueError, match=name):
        EkfSettings(**{name: bad})
