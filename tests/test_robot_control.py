"""PID, the row-following law, and the headland U-turn (on the ideal kinematic robot)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.robot.control import (
    PID,
    FollowGains,
    drive_to_x,
    follow_error,
    headland_turn,
    make_row_pid,
    steer,
    turn_to,
)
from fieldnotes.robot.drive import KinematicBackend, Program, wrap_angle
from fieldnotes.robot.row_detector import RowEstimate


def _est(offset, heading, ok=True):
    return RowEstimate(offset, heading, ok, None, None, 0, 0, 0.0)


def test_pid_terms_by_hand():
    pid = PID(kp=2.0, ki=0.5, kd=0.1)
    assert pid.update(1.0, 0.1) == pytest.approx(2.0 + 0.5 * 0.1 + 0.0)
    # second step: integral 0.2, derivative (0.5 - 1) / 0.1 = -5
    assert pid.update(0.5, 0.1) == pytest.approx(2 * 0.5 + 0.5 * 0.15 + 0.1 * -5)
    pid.reset()
    assert pid.update(0.0, 0.1) == 0.0
    with pytest.raises(ValueError, match="dt"):
        pid.update(1.0, 0.0)


@given(st.floats(-100, 100), st.floats(0.01, 1))
def test_pid_output_and_integral_are_limited(e, dt):
    pid = PID(kp=10, ki=10, limit=0.7, integral_limit=0.2)
    for _ in range(5):
        out = pid.update(e, dt)
        assert abs(out) <= 0.7
        assert abs(pid._integral) <= 0.2


def test_steering_turns_towards_the_lane_centre():
    gains = FollowGains()
    # robot left of centre → turn right (negative omega); robot turned left → turn right
    assert steer(_est(0.2, 0.0), make_row_pid(gains), gains, 0.1)[1] < 0
    assert steer(_est(-0.2, 0.0), make_row_pid(gains), gains, 0.1)[1] > 0
    assert steer(_est(0.0, 0.1), make_row_pid(gains), gains, 0.1)[1] < 0
    assert follow_error(_est(0.1, math.asin(0.05)), 2.0) == pytest.approx(0.2)
    v, w = steer(_est(0, 0, ok=False), make_row_pid(gains), gains, 0.1)
    assert w == 0 and v == pytest.approx(gains.speed_mps / 2)


@pytest.mark.parametrize("start_offset,start_heading", [(0.25, 0.0), (-0.2, 0.1), (0.0, -0.15)])
def test_closed_loop_converges_to_the_lane(start_offset, start_heading):
    """Feed the controller the true errors (a perfect camera): it settles on the centre line."""
    backend = KinematicBackend(start=(0.0, start_offset, start_heading))  # lane = x axis
    program = Program(backend)
    gains = FollowGains()
    pid = make_row_pid(gains)
    worst_late = 0.0
    for k in range(150):  # 15 s at 10 Hz
        _, y, yaw = backend.pose()
        v, w = steer(_est(y, wrap_angle(yaw)), pid, gains, 0.1)
        program.drive(v, w)
        backend.advance(0.1)
        if k > 100:
            worst_late = max(worst_late, abs(backend.pose()[1]))
    assert worst_late < 0.02
    assert backend.pose()[0] > 5  # it kept driving along the row


def test_turn_to_and_drive_to_x():
    backend = KinematicBackend(start=(0, 0, 0))
    program = Program(backend, turn_rate=0.8)
    turn_to(program, math.pi / 2)
    assert backend.pose()[2] == pytest.approx(math.pi / 2, abs=0.03)
    turn_to(program, -math.pi / 2)
    assert backend.pose()[2] == pytest.approx(-math.pi / 2, abs=0.03)
    turn_to(program, 0.0)
    drive_to_x(program, 1.5, 0.0)
    assert backend.pose()[0] == pytest.approx(1.5, abs=0.05)


@pytest.mark.parametrize("heading", [math.pi / 2, -math.pi / 2])
def test_headland_turn_lands_in_the_next_lane_facing_back(heading):
    backend = KinematicBackend(start=(0.0, 10.0, heading))
    program = Program(backend, turn_rate=0.8)
    headland_turn(program, 1.2, heading)
    x, _, yaw = backend.pose()
    assert x == pytest.approx(1.2, abs=0.05)
    assert abs(wrap_angle(yaw - heading - math.pi)) < 0.04
