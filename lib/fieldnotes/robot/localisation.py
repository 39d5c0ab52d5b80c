"""Where the robot thinks it is: an extended Kalman filter over wheel odometry, a gyro and the rows.

State: x, y (m), yaw (rad) and the gyro's bias (rad/s). Between readings the encoders give the
distance driven (the mean of the two sides' ticks) and the gyro the heading change; the encoders'
left-right difference is not used for heading, because a skid-steer robot's wheels slip sideways in
a turn and that difference overstates the turn by a factor that varies with speed and turn rate.
Corrections: whenever no encoder ticks (the robot stands still) the gyro's reading is its bias
(a zero-rate update); in a lane, the row detector's offset and heading put x and yaw against the
plot's map (rows along y, spaced as planted), without touching the bias. y along the rows is
odometry alone until a row's end, which the forward camera places against the planting plan (one
fix per row end, :meth:`PoseEkf.along_fix`); the encoders do not see a skid-steer turn's sideways
slide, so y and x drift mostly in the headland turns.

:class:`SensedRobot` wraps a simulator (or a robot) so that everything that steers — the row
controller, the headland turn, the row-end decision — sees only this estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fieldnotes.robot.drive import SkidSteer, wrap_angle
from fieldnotes.robot.sensing import Sensors


@dataclass(frozen=True)
class EkfSettings:
    """The filter's noise model. Motion noise is a random walk in the distance driven and the angle
    turned, so the uncertainty it adds does not depend on how often the filter predicts: along and
    across the heading, ``distance_sd`` and ``lateral_sd`` (m per √m driven: after ``d`` metres the
    sd is ``distance_sd·√d``); the gyro's noise per reading (sd, rad/s) and its bias's drift
    (rad/s per √s); the start's uncertainty (m, rad, rad/s); one camera fix's noise (m, rad); and
    how far a skid-steer turn may slide the robot unseen by the encoders, ``turn_slide_sd`` (m per
    √rad turned, in x and in y: 0.28 gives 0.35 m over a quarter turn, the size of the simulated
    Husky's slide in one, 0.33–0.38 m)."""

    distance_sd: float = 0.05
    lateral_sd: float = 0.02
    gyro_sd: float = 0.02
    bias_walk: float = 1e-4
    start_sd_m: float = 0.05
    start_yaw_sd: float = 0.02
    start_bias_sd: float = 0.03
    fix_offset_sd_m: float = 0.04
    fix_heading_sd_rad: float = 0.03
    turn_slide_sd: float = 0.28  # position sd (m per √rad turned): skid-steer slide
    gate: float = 13.8  # Mahalanobis distance² beyond which a camera fix is set aside (χ², 2 dof)
    along_gate: float = 25.0  # the same for a fix along the rows (χ², 1 dof: 5 sigmas)


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

    def pose(self) -> tuple[float, float, float]:
        """The estimated (x m, y m, yaw rad)."""
        x, y, yaw, _ = self.state
        return float(x), float(y), float(wrap_angle(yaw))

    def predict(self, distance_m: float, gyro_turn_rad: float, dt: float, samples: int = 1) -> None:
        """Motion over ``dt`` seconds: ``distance_m`` driven (encoders) and ``gyro_turn_rad`` the
        gyro's integrated turn (``samples`` readings), from which the bias estimate is removed."""
        s = self.settings
        x, y, yaw, bias = self.state
        turn = gyro_turn_rad - bias * dt
        mid = yaw + turn / 2
        c, si = math.cos(mid), math.sin(mid)
        self.state = np.array([x + distance_m * c, y + distance_m * si, yaw + turn, bias])
        jac = np.eye(4)
        jac[0, 2], jac[0, 3] = -distance_m * si, distance_m * si * dt / 2
        jac[1, 2], jac[1, 3] = distance_m * c, -distance_m * c * dt / 2
        jac[2, 3] = -dt
        along = np.array([c, si, 0, 0])
        across = np.array([-si, c, 0, 0])
        # random walks: variance grows with the distance and the angle, whatever the step rate
        q = s.distance_sd**2 * abs(distance_m) * np.outer(along, along)
        q += s.lateral_sd**2 * abs(distance_m) * np.outer(across, across)
        q[0, 0] += s.turn_slide_sd**2 * abs(turn)
        q[1, 1] += s.turn_slide_sd**2 * abs(turn)
        q[2, 2] += (s.gyro_sd * dt) ** 2 / max(samples, 1)
        q[3, 3] += s.bias_walk**2 * dt
        self.cov = jac @ self.cov @ jac.T + q

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
        self._ticks = np.asarray(sensors.encoder_ticks(), dtype=np.int64)
        self.last_distance_m = 0.0

    @property
    def time_s(self) -> float:
        """The robot's clock (s)."""
        return self.backend.time_s

    def set_wheels(self, left_mps: float, right_mps: float) -> None:
        """Command wheel speeds (m/s)."""
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
        if not moved.any():
            self.ekf.standing_still(float(np.mean(rates)), n)
            self.ekf.predict(0.0, float(np.mean(rates)) * n * step, n * step, n)
        else:
            self.ekf.predict(self.last_distance_m, turn, n * step, n)

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
    """In words, what the once-per-row-end fix did to the error along the rows over a run (RMS, m,
    with and without it), for the page's sentence about it."""
    if not (math.isfinite(along_rmse_with_m) and math.isfinite(along_rmse_without_m)):
        raise ValueError(
            f"both RMS errors must be finite, got {along_rmse_with_m}, {along_rmse_without_m}"
        )
    if along_rmse_with_m < along_rmse_without_m:
        return (
            "the position over the run improves too, but less than the marks, which are moved "
            "afterwards"
        )
    return (
        "the fix improves the marks, which are moved afterwards, and not the position over the "
        "run — it sets the error along the rows to the fix's own before each turn, and the turn's "
        "slide then stays until the next lane's end, while without it the slides of successive "
        "turns can partly cancel"
    )
