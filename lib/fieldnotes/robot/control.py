"""Row following and headland turns: a PID on what the camera sees, and the U-turn built from the
cardboard program's own moves (right, forward, right — or left, forward, left)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fieldnotes.robot.drive import Program, wrap_angle
from fieldnotes.robot.row_detector import RowEstimate


@dataclass
class PID:
    """A PID controller with output and integral limits; ``update`` returns the control output."""

    kp: float
    ki: float = 0.0
    kd: float = 0.0
    limit: float = math.inf
    integral_limit: float = 1.0
    _integral: float = field(default=0.0, repr=False)
    _previous: float | None = field(default=None, repr=False)

    def reset(self) -> None:
        """Forget the integral and the previous error."""
        self._integral, self._previous = 0.0, None

    def update(self, error: float, dt: float) -> float:
        """One step of ``kp·e + ki·∫e dt + kd·de/dt`` for error ``error`` after ``dt`` seconds."""
        if dt <= 0:
            raise ValueError(f"dt must be > 0 seconds, got {dt}")
        self._integral = float(
            np.clip(self._integral + error * dt, -self.integral_limit, self.integral_limit)
        )
        derivative = 0.0 if self._previous is None else (error - self._previous) / dt
        self._previous = error
        out = self.kp * error + self.ki * self._integral + self.kd * derivative
        return float(np.clip(out, -self.limit, self.limit))


@dataclass
class FollowGains:
    """Row-following settings: PID gains on the combined error (m), look-ahead (m) that weighs the
    heading error, cruise speed (m/s), turn-rate limit (rad/s)."""

    kp: float = 1.2
    ki: float = 0.05
    kd: float = 0.15
    lookahead_m: float = 1.0
    speed_mps: float = 0.6
    max_turn_radps: float = 0.6


def make_row_pid(gains: FollowGains) -> PID:
    """The PID used for row following, from ``gains``."""
    return PID(gains.kp, gains.ki, gains.kd, limit=gains.max_turn_radps, integral_limit=0.5)


def follow_error(estimate: RowEstimate, lookahead_m: float) -> float:
    """Combined error (m): lateral offset plus the drift the heading error causes over the look-ahead."""
    return estimate.offset_m + lookahead_m * math.sin(estimate.heading_rad)


def steer(estimate: RowEstimate, pid: PID, gains: FollowGains, dt: float) -> tuple[float, float]:
    """Speed (m/s) and turn rate (rad/s, + = left) that bring the robot back to the lane centre.

    Without a row estimate the robot goes straight at half speed (and the integral holds).
    """
    if not estimate.ok:
        return 0.5 * gains.speed_mps, 0.0
    omega = -pid.update(follow_error(estimate, gains.lookahead_m), dt)
    # slow down while correcting hard, as a driver would
    v = gains.speed_mps * (1 - 0.5 * abs(omega) / max(gains.max_turn_radps, 1e-9))
    return v, omega


def turn_to(
    program: Program,
    yaw: float,
    dt: float = 0.05,
    tolerance: float = 0.03,
    timeout_s: float = 20.0,
    on_tick=None,
) -> float:
    """Turn on the spot with ``left()``/``right()`` until the heading is within ``tolerance`` rad of
    ``yaw``; returns the seconds taken."""
    backend = program.backend
    start = backend.time_s
    while backend.time_s - start < timeout_s:
        err = wrap_angle(yaw - backend.pose()[2])
        if abs(err) < tolerance:
            break
        rate = float(np.clip(2.0 * abs(err), 0.15, program.turn_rate))
        if err > 0:
            program.left(rate)
        else:
            program.right(rate)
        backend.advance(dt)
        if on_tick is not None:
            on_tick()
    program.stop()
    return backend.time_s - start


def _drive_until(
    program: Program, remaining, yaw: float, speed: float, dt: float, timeout_s: float, on_tick
) -> float:
    """Drive along heading ``yaw`` (holding it) until ``remaining(x, y)`` (m, from
    ``program.backend.pose()``) is at most 1 cm or ``timeout_s`` passes; returns the seconds taken."""
    backend = program.backend
    start = backend.time_s
    while backend.time_s - start < timeout_s:
        x, y, heading = backend.pose()
        left = remaining(x, y)
        if left <= 0.01:
            break
        v = float(np.clip(1.5 * left, 0.1, speed))
        program.drive(v, 2.0 * wrap_angle(yaw - heading))
        backend.advance(dt)
        if on_tick is not None:
            on_tick()
    program.stop()
    return backend.time_s - start


def drive_to_x(
    program: Program,
    x_target: float,
    yaw: float,
    speed: float = 0.5,
    dt: float = 0.05,
    timeout_s: float = 30.0,
    on_tick=None,
) -> float:
    """Drive along heading ``yaw`` (holding it) until the robot's x reaches ``x_target`` (m)."""
    direction = math.cos(yaw)
    return _drive_until(program, lambda x, _y: (x_target - x) * direction, yaw, speed, dt,
                        timeout_s, on_tick)  # fmt: skip


def drive_ahead(
    program: Program,
    metres: float,
    yaw: float,
    speed: float = 0.5,
    dt: float = 0.05,
    timeout_s: float = 30.0,
    on_tick=None,
) -> float:
    """Drive ``metres`` (≥ 0) along heading ``yaw`` (holding it), measured on
    ``program.backend.pose()``; returns the seconds taken."""
    if not (math.isfinite(metres) and metres >= 0):
        raise ValueError(f"metres must be a finite number >= 0, got {metres}")
    x0, y0, _ = program.backend.pose()
    c, s = math.cos(yaw), math.sin(yaw)
    return _drive_until(program, lambda x, y: metres - ((x - x0) * c + (y - y0) * s), yaw, speed,
                        dt, timeout_s, on_tick)  # fmt: skip


def come_to_rest(
    program: Program, dt: float = 0.05, timeout_s: float = 3.0, on_tick=None, still_m: float = 1e-3
) -> float:
    """Stop the wheels and wait until ``program.backend.pose()`` moves less than ``still_m`` (m)
    in a step of ``dt`` s (or ``timeout_s`` passes); returns the seconds waited. A quarter turn
    begun from rest slides the same way each time, so it can be calibrated."""
    backend = program.backend
    program.stop()
    start = backend.time_s
    before = np.asarray(backend.pose()[:2])
    while backend.time_s - start < timeout_s:
        backend.advance(dt)
        if on_tick is not None:
            on_tick()
        now = np.asarray(backend.pose()[:2])
        if float(np.hypot(*(now - before))) < still_m:
            break
        before = now
    return backend.time_s - start


def headland_turn(
    program: Program, x_next: float, heading_now: float, dt: float = 0.05, on_tick=None
) -> float:
    """U-turn into the next lane at ``x_next`` (m): quarter turn, drive across, quarter turn.

    ``heading_now`` is the lane direction (rad) the robot is leaving; returns the seconds taken.
    Everything is steered on ``program.backend.pose()`` — on the mission's robot, the estimate.
    A skid-steer robot slides in each quarter turn, and encoders and gyro do not see the slide;
    each quarter turn begins from rest (:func:`come_to_rest`), so the slide repeats and the
    estimate can predict its calibrated mean (``EkfSettings.pivot_slide_*``); the robot first drives
    on by what the two turns will slide it back along the rows, and the drive across stops short
    of ``x_next`` by what the second slides it across. What is left of the slide the forward
    camera takes out as the robot enters the next lane (:func:`~fieldnotes.robot.mission.drive_lane`):
    the rows' offset across them, where the rows begin ahead along them.
    """
    backend = program.backend
    x0, _, _ = backend.pose()
    across = 0.0 if x_next >= x0 else math.pi
    back = wrap_angle(heading_now + math.pi)
    # the turns' predicted slides: drive on first by what they will slide the robot back along
    # the rows, and stop the drive across short of x_next by what the second slides it across
    ekf = getattr(backend, "ekf", None)
    first, second = (0.0, 0.0), (0.0, 0.0)
    if ekf is not None:
        first = ekf.pivot_slide_m(heading_now, wrap_angle(across - heading_now))
        second = ekf.pivot_slide_m(across, wrap_angle(back - across))
    back_along = -(
        (first[0] + second[0]) * math.cos(heading_now)
        + (first[1] + second[1]) * math.sin(heading_now)
    )
    t = drive_ahead(program, max(back_along, 0.0), heading_now, dt=dt, on_tick=on_tick)
    t += come_to_rest(program, dt=dt, on_tick=on_tick)
    t += turn_to(program, across, dt=dt, on_tick=on_tick)
    t += drive_to_x(program, x_next - second[0], across, dt=dt, on_tick=on_tick)
    t += come_to_rest(program, dt=dt, on_tick=on_tick)
    t += turn_to(program, back, dt=dt, on_tick=on_tick)
    return t
