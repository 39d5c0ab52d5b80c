"""Skid-steer kinematics, the program's moves, and the three backends."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.robot.drive import (
    HUSKY,
    HUSKY_SIM,
    GpioBackend,
    KinematicBackend,
    Program,
    SkidSteer,
    body_twist,
    integrate_pose,
    wheel_speeds,
    wrap_angle,
)


@given(st.floats(-0.5, 0.5), st.floats(-1.5, 1.5), st.floats(0.5, 3.0))
def test_wheel_speeds_and_body_twist_are_inverse(v, w, factor):
    geom = SkidSteer(track_factor=factor, max_speed_mps=10.0)
    left, right = wheel_speeds(v, w, geom)
    v2, w2 = body_twist(left, right, geom)
    assert v2 == pytest.approx(v, abs=1e-9) and w2 == pytest.approx(w, abs=1e-9)


@given(st.floats(-3, 3), st.floats(-5, 5))
def test_saturation_keeps_the_curvature(v, w):
    left, right = wheel_speeds(v, w, HUSKY)
    assert max(abs(left), abs(right)) <= HUSKY.max_speed_mps + 1e-9
    v2, w2 = body_twist(left, right, HUSKY)
    assert v2 * w == pytest.approx(v * w2, abs=1e-9)  # same radius of turn


def test_integrate_pose_straight_and_full_circle():
    assert integrate_pose((0, 0, 0), 1.0, 0.0, 2.0) == pytest.approx((2.0, 0.0, 0.0))
    x, y, yaw = integrate_pose((1, 2, 0.3), 0.5, 0.5, 2 * math.pi / 0.5)
    assert (x, y) == pytest.approx((1, 2), abs=1e-9) and wrap_angle(yaw - 0.3) == pytest.approx(0)
    # a quarter circle of radius 1 to the left
    assert integrate_pose((0, 0, 0), 1.0, 1.0, math.pi / 2)[:2] == pytest.approx((1, 1))


@given(st.floats(-100, 100))
def test_wrap_angle_range(a):
    w = wrap_angle(a)
    assert -math.pi <= w < math.pi
    assert math.cos(w) == pytest.approx(math.cos(a), abs=1e-9)


def test_program_moves_a_kinematic_robot():
    robot = Program(KinematicBackend(), speed=0.5)
    robot.forward(seconds=2.0)
    assert robot.backend.pose() == pytest.approx((1.0, 0.0, 0.0))
    robot.left(rate=0.5, seconds=math.pi)  # 0.5 rad/s for π s = a quarter turn
    assert robot.backend.pose()[2] == pytest.approx(math.pi / 2)
    robot.right(rate=0.5, seconds=math.pi / 2)
    assert robot.backend.pose()[2] == pytest.approx(math.pi / 4)
    assert robot.backend.pose()[:2] == pytest.approx((1.0, 0.0))
    robot.stop(seconds=1.0)
    assert robot.backend.time_s == pytest.approx(2 + math.pi + math.pi / 2 + 1)
    with pytest.raises(ValueError, match="speed"):
        Program(KinematicBackend(), speed=0)


def test_gpio_backend_drives_the_motor_pins():
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    pins = MockFactory(pin_class=MockPWMPin)
    backend = GpioBackend(
        left_pins=(17, 18), right_pins=(22, 23), geometry=HUSKY, pin_factory=pins, sleep=False
    )
    robot = Program(backend)
    try:
        robot.forward(0.5)
        assert pins.pin(17).state == pytest.approx(0.5) and pins.pin(22).state == pytest.approx(0.5)
        assert not pins.pin(18).state and not pins.pin(23).state
        robot.left(1.0)  # left side backwards, right side forwards
        duty = HUSKY.track_m / 2 / HUSKY.max_speed_mps
        assert pins.pin(18).state == pytest.approx(duty) and pins.pin(22).state == pytest.approx(
            duty
        )
        assert not pins.pin(17).state
        robot.right(1.0, seconds=1.0)
        assert pins.pin(17).state == pytest.approx(duty) and pins.pin(23).state == pytest.approx(
            duty
        )
        assert backend.pose()[2] == pytest.approx(-1.0)  # dead reckoning
        robot.forward(3.0)  # beyond the top speed: duty clipped to 1
        assert pins.pin(17).state == pytest.approx(1.0)
        robot.stop()
        assert all(not pins.pin(n).state for n in (17, 18, 22, 23))
        assert tuple(backend.robot.value) == (0, 0)
    finally:
        backend.close()


def test_each_robot_dead_reckons_with_its_own_parameters():
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from fieldnotes.robot.drive import CARDBOARD, HUSKY_SIM, ROBOTS, robot_geometry

    assert robot_geometry("cardboard") is CARDBOARD and robot_geometry("husky-sim") is HUSKY_SIM
    assert set(ROBOTS) == {"husky", "husky-sim", "cardboard"}
    with pytest.raises(ValueError, match="cardboard"):
        robot_geometry("rover")
    pins = MockFactory(pin_class=MockPWMPin)
    backend = GpioBackend(pin_factory=pins, sleep=False)  # the Pi drives the cardboard robot
    try:
        assert backend.geometry is CARDBOARD
        Program(backend).left(1.0, seconds=1.0)
        # 14 cm track, 0.4 m/s top speed: a 1 rad/s spin is 0.175 of full duty on each side
        assert pins.pin(22).state == pytest.approx(CARDBOARD.track_m / 2 / CARDBOARD.max_speed_mps)
        assert backend.pose()[2] == pytest.approx(1.0)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def husky():
    from fieldnotes.robot.drive import PyBulletBackend

    b = PyBulletBackend(None, start=(0.0, 0.0, 0.0), time_step=1 / 60)
    yield b
    b.close()


def test_pybullet_husky_goes_straight_then_turns(husky):
    robot = Program(husky, speed=0.5)
    x0, y0, yaw0 = husky.pose()
    robot.forward(seconds=3.0)
    x1, y1, yaw1 = husky.pose()
    assert 1.2 < x1 - x0 < 1.75  # 0.5 m/s for 3 s, give or take spin-up and wheel contact
    assert abs(y1 - y0) < 0.05 and abs(wrap_angle(yaw1 - yaw0)) < 0.05
    robot.stop(seconds=1.0)
    robot.left(rate=0.5, seconds=4.0)
    yaw2 = husky.pose()[2]
    turned = wrap_angle(yaw2 - yaw1)
    # with the measured skid-steer expansion factor the turn is close to the command
    assert 0.6 * 2.0 < turned < 1.2 * 2.0
    robot.right(rate=0.5, seconds=2.0)
    assert wrap_angle(husky.pose()[2] - yaw2) < 0
    robot.stop(seconds=0.5)
    assert husky.time_s == pytest.approx(10.5 + 0.0, abs=0.05)


def test_pybullet_camera_frame(husky):
    rgb = husky.camera_image()
    cam = husky.camera
    assert rgb.shape == (cam.height, cam.width, 3) and rgb.dtype == np.uint8
    # an empty field: soil everywhere below the horizon, nothing green
    from fieldnotes.robot.row_detector import excess_green

    assert excess_green(rgb[cam.height // 2 :]).max() < 0.05


def test_sim_geometry_is_the_husky():
    assert HUSKY_SIM.track_m == HUSKY.track_m and HUSKY_SIM.track_factor > 1


@pytest.mark.parametrize("speed", [0.3, 0.9])
def test_rolling_factor_is_what_pybullet_rolls(speed):
    """On a straight the body moves HUSKY_SIM.rolling_factor × the wheels' nominal rim travel, and
    the wheel joints' angles (what encoders count) say how far the wheels turned."""
    from fieldnotes.robot.drive import PyBulletBackend

    with PyBulletBackend(None, start=(0.0, 0.0, 0.0)) as sim:
        sim.set_wheels(speed, speed)
        sim.advance(1.0)  # up to speed
        a0, x0 = np.mean(sim.wheel_angles()), sim.pose()[0]
        sim.advance(4.0)
        a1, x1 = np.mean(sim.wheel_angles()), sim.pose()[0]
    rolled = (x1 - x0) / ((a1 - a0) * HUSKY_SIM.wheel_radius_m)
    assert rolled == pytest.approx(HUSKY_SIM.rolling_factor, abs=0.003)
    assert (a1 - a0) == pytest.approx(4.0 * speed / HUSKY_SIM.wheel_radius_m, rel=0.01)


def test_pybullet_yaw_rate_is_the_turn_rate():
    from fieldnotes.robot.drive import PyBulletBackend

    with PyBulletBackend(None, start=(0.0, 0.0, 0.0)) as sim:
        sim.set_wheels(-0.3, 0.3)
        sim.advance(1.0)
        yaw0, turned = sim.pose()[2], 0.0
        for _ in range(60):
            sim.advance(sim.time_step)
            turned += sim.yaw_rate() * sim.time_step
        assert turned == pytest.approx(wrap_angle(sim.pose()[2] - yaw0), abs=0.01)
        assert turned > 0.1


def test_hiding_the_chassis_does_not_change_the_camera_frame():
    from fieldnotes.robot.drive import PyBulletBackend
    from fieldnotes.robot.field import make_field

    f = make_field(rows=2, plants_per_row=6, seed=3)
    frames = []
    for visible in (True, False):
        with PyBulletBackend(f, start=(0.6, -0.5, math.pi / 2), robot_visible=visible) as sim:
            frames.append(sim.camera_image())
    assert np.array_equal(frames[0], frames[1])
    assert (frames[0].astype(int)[..., 1] > 100).any()  # plants in view


def test_every_plant_of_a_long_row_is_rendered():
    """Plants are grouped into multi-shape bodies; PyBullet keeps at most 16 shapes per array, so
    a row longer than that must still be drawn to its end."""
    from fieldnotes.robot.drive import PyBulletBackend
    from fieldnotes.robot.field import make_field
    from fieldnotes.robot.row_detector import excess_green

    f = make_field(rows=2, plants_per_row=60, seed=1, gap_fraction=0.0, weeds_per_row=0)
    with PyBulletBackend(f, start=(0.6, f.row_length_m - 4.0, math.pi / 2)) as sim:
        green = (excess_green(sim.camera_image()) > 0.2).sum()
    assert green > 300  # both rows, all the way to the horizon of 4 m


def test_square_closes_on_the_ideal_robot_and_reports_its_turns():
    from fieldnotes.robot.drive import square

    run = square(Program(KinematicBackend(), speed=0.5, turn_rate=0.5), side_s=2.0, steps=10)
    assert run.path.shape == (1 + 4 * 2 * 10, 3)
    assert run.gap_m == pytest.approx(0.0, abs=1e-9)
    assert run.turns_rad == pytest.approx([math.pi / 2] * 4)
    assert run.turn_slides_m == pytest.approx([0.0] * 4, abs=1e-9)  # an ideal robot spins in place
    # the first side: 0.5 m/s for 2 s along +x
    assert run.path[10] == pytest.approx((1.0, 0.0, 0.0), abs=1e-9)
    with pytest.raises(ValueError, match="side_s"):
        square(Program(KinematicBackend()), side_s=0)


def test_square_on_the_pybullet_husky_does_not_close(husky):
    from fieldnotes.robot.drive import square

    run = square(Program(husky, speed=0.5, turn_rate=0.5), side_s=2.0)
    assert run.gap_m > 0.2  # open-loop timed moves drift
    assert all(0 < t < math.pi / 2 for t in run.turns_rad)  # a timed left turns less than 90°
    assert max(run.turn_slides_m) > 0.05  # and the centre slides while it spins
