"""Where the robot thinks it is: an extended Kalman filter over wheel odometry, a gyro and the rows.

State: x, y (m), yaw (rad) and the gyro's bias (rad/s). Between readings the encoders give the
distance driven (the mean of the two sides' ticks) and the gyro the heading change; the encoders'
left-right difference is not used for heading, because a skid-steer robot's wheels slip sideways in
a turn and that difference overstates the turn by a factor that varies with speed and turn rate.
Corrections: whenever no encoder ticks (the robot stands still) the gyro's reading is its bias
(a zero-rate update); in a lane, the row detector's offset and heading put x and yaw against the
plot's map (rows along y, spaced as planted), without touching the bias. y along the rows is
odometry alone between a row's start and its end, which the forward camera places against the
planting plan (one fix at each, :meth:`PoseEkf.along_fix`). The encoders do not see a skid-steer
turn's sideways slide; its mean, calibrated on the robot (``EkfSettings.pivot_slide_*``), is
predicted in every turn in place, and what is left of it (its spread) is why y and x drift mostly
in the headland turns.

:class:`SensedRobot` wraps a simulator (or a robot) so that everything that steers — the row
controller, the headland turn, the row-end decision — sees only this estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fieldnotes.robot.drive import SkidSteer, wrap_angle
from fieldnotes.robot.sensing import Sensors, check_non_negative


@dataclass(frozen=True)
class EkfSettings:
    """The filter's noise model. Motion noise is a random walk in the distance driven and the angle
    turned, so the uncertainty it adds does not depend on how often the filter predicts: along and
    across the heading, ``distance_sd`` and ``lateral_sd`` (m per √m driven: after ``d`` metres the
    sd is ``distance_sd·√d``); the gyro's noise per reading (sd, rad/s) and its bias's drift
    (rad/s per √s); the start's uncertainty (m, rad, rad/s); one camera fix's noise (m, rad); and
    how a skid-steer robot's centre slides while it spins in place (its wheels commanded in
    opposite directions), which the encoders and gyro do not see: the mean slide per radian turned,
    ``pivot_slide_left`` for left turns and ``pivot_slide_right`` for right ones ((ahead, left) m
    per rad, in the robot's frame as it turns; a repeatable, systematic slide, predicted like
    odometry), and the spread about it, ``turn_slide_sd`` (m per √rad, in x and in y). The defaults
    are the simulated Husky's, measured by :func:`~fieldnotes.robot.calibration.measure_turn_slide`
    and :func:`~fieldnotes.robot.calibration.fit_pivot_slide` (a real robot is calibrated the same
    way, its turns measured with a tape or a total station on a test patch)."""

    distance_sd: float = 0.05
    lateral_sd: float = 0.02
    gyro_sd: float = 0.02
    bias_walk: float = 1e-4
    start_sd_m: float = 0.05
    start_yaw_sd: float = 0.02
    start_bias_sd: float = 0.03
    fix_offset_sd_m: float = 0.04
    fix_heading_sd_rad: float = 0.03
    # measured: 4 quarter turns each way from rest on the simulated Husky (fit_pivot_slide:
    # (-0.35, 0.29) m per left quarter turn, (-0.39, -0.29) m per right one, spread 0.03-0.04
    # m/√rad, rounded up to 0.05 for the mission's headlands, which are not the test patch)
    turn_slide_sd: float = 0.05  # position sd (m per √rad turned in place): the slide's spread
    pivot_slide_left: tuple[float, float] = (-0.029, 0.322)  # mean slide (ahead, left) m per rad
    pivot_slide_right: tuple[float, float] = (-0.053, -0.338)  # the same for right turns
    gate: float = 13.8  # Mahalanobis distance² beyond which a camera fix is set aside (χ², 2 dof)
    along_gate: float = 25.0  # the same for a fix along the rows (χ², 1 dof: 5 sigmas)

    def __post_init__(self) -> None:
        """Refuse a noise value that is negative or not finite, a gate that is not > 0, or a slide
        that is not two finite numbers, naming it."""
        check_non_negative(self, ("distance_sd", "lateral_sd", "gyro_sd", "bias_walk", "start_sd_m",
                                  "start_yaw_sd", "start_bias_sd", "fix_offset_sd_m",
                                  "fix_heading_sd_rad", "turn_slide_sd"))
        for name in ("gate", "along_gate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("pivot_slide_left", "pivot_slide_right"):
            value = getattr(self, name)
            if len(value) != 2 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be two finite numbers (m per rad), got {value!r}")


class PoseEkf:
    """The extended Kalman filter over (x, y, yaw, gyro bias)."""

    def __init__(self, start: tuple[float, float, float], settings: EkfSettings | None = None):
        self.settings = s = settings or EkfSettings()
        self.state = np.array([*map(float, start), 0.0])
        self.cov = np.diag(
            [s.start_sd_m**2, s.start_sd_m**2, s.start_yaw_sd**2, s.start_bias_sd**2]
        )
        self.fixes_used = 0
        self.fixes_rejected = 0
        self.along_fixes_used = 0
        self.along_correction_m = 0.0  # how far (m) along fixes have moved y, in all
        self.y_travel_m = 0.0  # estimated travel along y (m, |dy| summed) since the last along fix
        self.last_fix_travel_m = 0.0  # that travel when the last along fix was taken (m)

    def pose(self) -> tuple[float, float, float]:
        """The estimated (x m, y m, yaw rad)."""
        x, y, yaw, _ = self.state
        return float(x), float(y), float(wrap_angle(yaw))

    def predict(
        self,
        distance_m: float,
        gyro_turn_rad: float,
        dt: float,
        samples: int = 1,
        pivoting: bool = False,
    ) -> None:
        """Motion over ``dt`` seconds: ``distance_m`` driven (encoders) and ``gyro_turn_rad`` the
        gyro's integrated turn (``samples`` readings), from which the bias estimate is removed;
        ``pivoting``: the wheels were commanded to spin the robot in place, so it slides by the
        calibrated mean slide per radian (``settings.pivot_slide_*``) with its spread."""
        s = self.settings
        x, y, yaw, bias = self.state
        turn = gyro_turn_rad - bias * dt
        mid = yaw + turn / 2
        c, si = math.cos(mid), math.sin(mid)
        ahead, left = distance_m, 0.0
        if pivoting:
            per_rad = s.pivot_slide_left if turn > 0 else s.pivot_slide_right
            ahead, left = ahead + per_rad[0] * abs(turn), per_rad[1] * abs(turn)
        dx, dy = ahead * c - left * si, ahead * si + left * c
        self.state = np.array([x + dx, y + dy, yaw + turn, bias])
        self.y_travel_m += abs(dy)
        jac = np.eye(4)
        jac[0, 2], jac[0, 3] = -dy, dy * dt / 2
        jac[1, 2], jac[1, 3] = dx, -dx * dt / 2
        jac[2, 3] = -dt
        along = np.array([c, si, 0, 0])
        across = np.array([-si, c, 0, 0])
        # random walks: variance grows with the distance and the angle, whatever the step rate
        q = s.distance_sd**2 * abs(distance_m) * np.outer(along, along)
        q += s.lateral_sd**2 * abs(distance_m) * np.outer(across, across)
        if pivoting:  # only spinning in place slides the robot, not a lane's steering
            q[0, 0] += s.turn_slide_sd**2 * abs(turn)
            q[1, 1] += s.turn_slide_sd**2 * abs(turn)
        q[2, 2] += (s.gyro_sd * dt) ** 2 / max(samples, 1)
        q[3, 3] += s.bias_walk**2 * dt
        self.cov = jac @ self.cov @ jac.T + q

    def pivot_slide_m(self, yaw_rad: float, turn_rad: float) -> tuple[float, float]:
        """Where the calibrated mean slide moves the robot (world dx, dy, m) in a turn in place
        of ``turn_rad`` (signed, + = left) begun at heading ``yaw_rad``: the per-radian slide
        (``settings.pivot_slide_*``) added up over the turn, as :meth:`predict` adds it."""
        if not (math.isfinite(yaw_rad) and math.isfinite(turn_rad)):
            raise ValueError(f"yaw_rad and turn_rad must be finite, got {yaw_rad}, {turn_rad}")
        s, a = math.copysign(1.0, turn_rad), abs(turn_rad)
        per_rad = self.settings.pivot_slide_left if turn_rad > 0 else self.settings.pivot_slide_right
        ahead = math.sin(a) * per_rad[0] - s * (1 - math.cos(a)) * per_rad[1]
        left = s * (1 - math.cos(a)) * per_rad[0] + math.sin(a) * per_rad[1]
        c, si = math.cos(yaw_rad), math.sin(yaw_rad)
        return ahead * c - left * si, ahead * si + left * c

    def _update(
        self,
        innovation: np.ndarray,
        h: np.ndarray,
        r: np.ndarray,
        gate: float,
        teaches_bias: bool = True,
    ) -> bool:
        """A linear measurement update; False (and no change) if the innovation fails ``gate``.
        With ``teaches_bias`` False the gyro-bias estimate is left as it is (a "consider" state)."""
        s_mat = h @ self.cov @ h.T + r
        if float(innovation @ np.linalg.solve(s_mat, innovation)) > gate:
            return False
        gain = self.cov @ h.T @ np.linalg.inv(s_mat)
        if not teaches_bias:
            gain[3, :] = 0.0
        self.state = self.state + gain @ innovation
        ikh = np.eye(4) - gain @ h
        self.cov = ikh @ self.cov @ ikh.T + gain @ r @ gain.T  # Joseph form: stays symmetric
        return True

    def standing_still(self, mean_gyro_radps: float, samples: int) -> None:
        """Zero-rate update: standing still, the mean of ``samples`` gyro readings is the bias."""
        h = np.array([[0.0, 0.0, 0.0, 1.0]])
        r = np.array([[self.settings.gyro_sd**2 / max(samples, 1)]])
        self._update(np.array([mean_gyro_radps - self.state[3]]), h, r, math.inf)

    def lane_fix(self, x_m: float, yaw_rad: float) -> bool:
        """A camera fix in a lane: x (m) and yaw (rad) from the row detector against the map.
        Returns whether it passed the gate."""
        s = self.settings
        h = np.zeros((2, 4))
        h[0, 0] = h[1, 2] = 1.0
        r = np.diag([s.fix_offset_sd_m**2, s.fix_heading_sd_rad**2])
        innovation = np.array([x_m - self.state[0], wrap_angle(yaw_rad - self.state[2])])
        # the rows' heading carries the detector's own small biases (a degree or two): they may
        # correct yaw but must not be learnt as the gyro's bias, which only standing still teaches
        ok = self._update(innovation, h, r, s.gate, teaches_bias=False)
        self.fixes_used += ok
        self.fixes_rejected += not ok
        return ok

    def along_consistent(self, y_m: float, sd_m: float) -> bool:
        """Whether a fix of y (m) with noise ``sd_m`` (m) would pass :meth:`along_fix`'s gate
        (χ², 1 dof, ``settings.along_gate``) — asked without fusing it."""
        if not (math.isfinite(y_m) and math.isfinite(sd_m) and sd_m > 0):
            raise ValueError(f"y_m must be finite and sd_m finite and > 0 m, got {y_m}, {sd_m}")
        innovation = y_m - self.state[1]
        return innovation**2 / (self.cov[1, 1] + sd_m**2) <= self.settings.along_gate

    def along_fix(self, y_m: float, sd_m: float) -> bool:
        """A fix of y along the rows (m) with noise ``sd_m`` (m), e.g. from where the forward
        camera sees a row end that the plot's planting plan places. Returns whether it passed the
        gate (χ², 1 dof, ``settings.along_gate``). Readings with correlated errors (consecutive
        frames of one row end) must be fused as one fix, not one each."""
        if not self.along_consistent(y_m, sd_m):
            return False
        h = np.array([[0.0, 1.0, 0.0, 0.0]])
        innovation = np.array([y_m - self.state[1]])
        before = self.state[1]
        ok = self._update(innovation, h, np.array([[sd_m**2]]), self.settings.along_gate, False)
        self.along_fixes_used += ok
        self.along_correction_m += float(self.state[1] - before)
        if ok:
            self.last_fix_travel_m, self.y_travel_m = self.y_travel_m, 0.0
        return ok


class SensedRobot:
    """A backend as the robot knows it: wheels and clock pass through; ``pose()`` is the EKF's
    estimate from the encoders and the gyro (sampled every physics step), and ``camera()`` the
    forward camera through the sensor's noise. Program, row controller and headland turn drive it
    like any backend."""

    def __init__(
        self,
        backend,
        sensors: Sensors,
        start: tuple[float, float, float],
        geometry: SkidSteer | None = None,
        settings: EkfSettings | None = None,
    ):
        self.backend = backend
        self.sensors = sensors
        self.geometry = geometry or backend.geometry
        self.ekf = PoseEkf(start, settings)
        self._wheels = (0.0, 0.0)  # the last commanded wheel speeds (m/s)
        self._ticks = np.asarray(sensors.encoder_ticks(), dtype=np.int64)
        self.last_distance_m = 0.0

    @property
    def time_s(self) -> float:
        """The robot's clock (s)."""
        return self.backend.time_s

    def set_wheels(self, left_mps: float, right_mps: float) -> None:
        """Command wheel speeds (m/s)."""
        self._wheels = (float(left_mps), float(right_mps))
        self.backend.set_wheels(left_mps, right_mps)

    def advance(self, seconds: float) -> None:
        """Run for ``seconds``: the gyro read every physics step, the encoders at the end, then one
        EKF prediction (or a zero-rate update if the wheels did not turn)."""
        step = getattr(self.backend, "time_step", seconds)
        n = max(1, int(round(seconds / step)))
        turn = 0.0
        rates = []
        for _ in range(n):
            self.backend.advance(step)
            rate = self.sensors.gyro()
            rates.append(rate)
            turn += rate * step
        ticks = np.asarray(self.sensors.encoder_ticks(), dtype=np.int64)
        moved = ticks - self._ticks
        self._ticks = ticks
        g = self.geometry
        metres_per_tick = (
            2 * math.pi * g.wheel_radius_m * g.rolling_factor / self.sensors.ticks_per_rev
        )
        self.last_distance_m = float(moved.mean() * metres_per_tick)
        pivoting = self._wheels[0] * self._wheels[1] < 0  # wheels commanded against each other
        if not moved.any():
            self.ekf.standing_still(float(np.mean(rates)), n)
            self.ekf.predict(0.0, float(np.mean(rates)) * n * step, n * step, n)
        else:
            self.ekf.predict(self.last_distance_m, turn, n * step, n, pivoting=pivoting)

    def pose(self) -> tuple[float, float, float]:
        """The estimated (x m, y m, yaw rad)."""
        return self.ekf.pose()

    def camera(self) -> np.ndarray:
        """The forward camera's frame as the robot receives it (noise included)."""
        return self.sensors.camera()

    def side_camera(self, side: int) -> np.ndarray:
        """The side camera's frame on side ``side`` (+1 left, −1 right), noise included."""
        return self.sensors.side_camera(side)

    def calibrate(self, seconds: float = 1.0, dt: float = 0.1) -> None:
        """Stand still for ``seconds`` so the zero-rate updates learn the gyro's bias."""
        self.set_wheels(0.0, 0.0)
        for _ in range(max(1, int(round(seconds / dt)))):
            self.advance(dt)


def row_end_fix_verdict(along_rmse_with_m: float, along_rmse_without_m: float) -> str:
    """In words, whether a fix or model made the error along the rows over a run (RMS, m, with and
    without it) smaller, for the page's sentence about it; the measured comparison only."""
    if not (math.isfinite(along_rmse_with_m) and math.isfinite(along_rmse_without_m)):
        raise ValueError(
            f"both RMS errors must be finite, got {along_rmse_with_m}, {along_rmse_without_m}"
        )
    return "smaller with it" if along_rmse_with_m < along_rmse_without_m else "not smaller with it"
