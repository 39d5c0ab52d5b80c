"""The robot's sensors: encoder ticks (quantisation, slip), the gyro (bias, noise), camera frames."""

import math

import numpy as np
import pytest

from fieldnotes.robot.drive import HUSKY, KinematicBackend
from fieldnotes.robot.sensing import (
    NOISE_PRESETS,
    SensorNoise,
    Sensors,
    degrade_frame,
    noise_preset,
)


def test_presets_and_bad_noise():
    assert list(NOISE_PRESETS) == ["none", "default", "high"]
    assert noise_preset("none") == SensorNoise()
    d, h = noise_preset("default"), noise_preset("high")
    assert h.camera_sd > d.camera_sd > 0 and h.slip_sd > d.slip_sd > 0
    assert h.gyro_bias_sd > d.gyro_bias_sd > 0 and h.ticks_per_rev < d.ticks_per_rev
    assert h.slip_bias_sd > d.slip_bias_sd > 0 == NOISE_PRESETS["none"].slip_bias_sd
    with pytest.raises(ValueError, match="sensor noise 'loud'"):
        noise_preset("loud")
    with pytest.raises(ValueError, match="slip_sd"):
        SensorNoise(slip_sd=float("nan"))
    with pytest.raises(ValueError, match="ticks_per_rev"):
        SensorNoise(ticks_per_rev=0)
    with pytest.raises(ValueError, match="slip_bias_sd"):
        SensorNoise(slip_bias_sd=-0.1)


def test_encoder_ticks_are_the_wheel_angle_quantised():
    robot = KinematicBackend(HUSKY)
    sensors = Sensors(robot, SensorNoise(ticks_per_rev=100))
    robot.set_wheels(0.2, 0.5)
    for _ in range(7):
        robot.advance(0.13)
        left, right = sensors.encoder_ticks()
        angles = robot.wheel_angles()
        assert (left, right) == tuple(int(math.floor(a * 100 / (2 * math.pi))) for a in angles)


def test_encoder_slip_is_unbiased_with_the_stated_spread():
    robot = KinematicBackend(HUSKY)
    sensors = Sensors(robot, SensorNoise(slip_sd=0.1), seed=3)
    robot.set_wheels(0.5, 0.5)
    steps = []
    last = np.array(sensors.encoder_ticks())
    for _ in range(2000):
        robot.advance(0.1)
        now = np.array(sensors.encoder_ticks())
        steps.append((now - last)[0])
        last = now
    true_step = 0.5 * 0.1 / HUSKY.wheel_radius_m * 2**20 / (2 * math.pi)
    ratio = np.array(steps) / true_step
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)
    assert ratio.std() == pytest.approx(0.1, rel=0.1)


def test_gyro_reads_rate_plus_a_per_run_bias_and_noise():
    robot = KinematicBackend(HUSKY)
    robot.set_wheels(-0.2, 0.2)
    rate = robot.yaw_rate()
    noise = SensorNoise(gyro_bias_sd=0.05, gyro_noise_sd=0.01)
    a, b = Sensors(robot, noise, seed=1), Sensors(robot, noise, seed=2)
    assert a.gyro_bias_radps != b.gyro_bias_radps
    readings = np.array([a.gyro() for _ in range(4000)])
    assert readings.mean() == pytest.approx(rate + a.gyro_bias_radps, abs=0.001)
    assert readings.std() == pytest.approx(0.01, rel=0.1)
    assert Sensors(robot, SensorNoise()).gyro() == rate


def test_degrade_frame():
    rng = np.random.default_rng(0)
    grey = np.full((48, 64, 3), 128, np.uint8)
    assert degrade_frame(grey, SensorNoise(), rng) is grey
    noisy = degrade_frame(grey, SensorNoise(camera_sd=10.0), rng).astype(float)
    assert noisy.std() == pytest.approx(10.0, rel=0.1) and noisy.mean() == pytest.approx(128, abs=1)
    edge = np.zeros((48, 64, 3), np.uint8)
    edge[:, 32:] = 200
    blurred = degrade_frame(edge, SensorNoise(camera_blur_px=1.5), rng)
    assert 0 < blurred[0, 31, 0] < 200 and blurred[0, 0, 0] == 0
    assert blurred[:, :, 0].sum() == pytest.approx(edge[:, :, 0].astype(int).sum(), rel=0.01)
    with pytest.raises(ValueError, match="rgb"):
        degrade_frame(np.zeros((4, 4)), SensorNoise(), rng)


def test_encoder_slip_bias_is_one_over_count_per_run_that_does_not_average_out():
    """Slip on loose soil is not zero-mean: each run's encoders over-count by their own fraction,
    so a longer drive does not average it away (the presets' difference in localisation)."""
    ratios = []
    for seed in (1, 2, 3):
        robot = KinematicBackend(HUSKY)
        sensors = Sensors(robot, SensorNoise(slip_bias_sd=0.05, slip_sd=0.05), seed=seed)
        robot.set_wheels(0.5, 0.5)
        for _ in range(1000):  # a reading every 0.1 s: the zero-mean part averages out
            robot.advance(0.1)
            ticks = sensors.encoder_ticks()
        counted = np.array(ticks) * 2 * math.pi / 2**20
        ratio = counted / np.array(robot.wheel_angles())
        assert ratio == pytest.approx(1 + sensors.slip_bias, abs=0.005)
        assert (sensors.slip_bias >= 0).all()
        ratios.append(ratio.mean())
    assert np.ptp(ratios) > 0.01  # drawn per run: runs differ
