"""What the robot senses: wheel-encoder ticks, a gyro, and noisy camera frames.

The simulator supplies what the hardware would measure — each wheel joint's angle (rad) and the
chassis's turn rate (rad/s) — and these models turn it into what a robot's drivers report:

- **encoders**: ticks from the wheel angles, each side the mean of its two wheels, quantised to
  ``ticks_per_rev`` and with slip: every reading's increment is off by a random fraction
  (``slip_sd``, zero-mean), and on top of that each side over-counts by a fraction drawn once per
  run (``slip_bias_sd``: the wheels spin a little on loose soil without the body moving with them,
  always forwards, so it does not average out — the odometry overstates the distance driven);
- **gyro**: the turn rate plus a bias drawn once per run (``gyro_bias_sd``) and white noise
  (``gyro_noise_sd``) on each reading;
- **cameras** (forward and side): the rendered frame with a brightness change per frame, Gaussian blur and pixel noise.

``NOISE_PRESETS`` holds the three settings of ``--sensor-noise``: ``none`` (ideal sensors),
``default`` (the book's) and ``high``. Their values are chosen, not measured on a real robot: a
1024-tick encoder is common on small gear motors, and the gyro's bias (about 0.3°/s) and noise are
in the range a consumer MEMS gyro shows before calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


def check_non_negative(settings: object, names: tuple[str, ...]) -> None:
    """Raise a ValueError naming the first of ``settings``' fields ``names`` that is not a finite
    number >= 0 (noise levels, standard deviations, blur widths)."""
    for name in names:
        value = getattr(settings, name)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class SensorNoise:
    """Noise levels: camera pixel noise (sd, 0–255 units), blur (Gaussian sd, px) and brightness
    change per frame (sd, fraction); encoder resolution (ticks per wheel revolution, None = exact)
    and slip (sd of each reading's increment, fraction; and the per-run over-count, |N(0, sd)|
    per side, fraction); gyro bias (sd across runs, rad/s) and
    white noise (sd per reading, rad/s)."""

    camera_sd: float = 0.0
    camera_blur_px: float = 0.0
    brightness_sd: float = 0.0
    ticks_per_rev: int | None = None
    slip_sd: float = 0.0
    slip_bias_sd: float = 0.0
    gyro_bias_sd: float = 0.0
    gyro_noise_sd: float = 0.0

    def __post_init__(self) -> None:
        check_non_negative(self, ("camera_sd", "camera_blur_px", "brightness_sd", "slip_sd",
                                  "slip_bias_sd", "gyro_bias_sd", "gyro_noise_sd"))
        if self.ticks_per_rev is not None and (
            isinstance(self.ticks_per_rev, bool)
            or not isinstance(self.ticks_per_rev, int)
            or self.ticks_per_rev < 1
        ):
            raise ValueError(
                f"ticks_per_rev must be an int >= 1 or None, got {self.ticks_per_rev!r}"
            )


NOISE_PRESETS: dict[str, SensorNoise] = {
    "none": SensorNoise(),
    "default": SensorNoise(
        camera_sd=6.0,
        camera_blur_px=0.7,
        brightness_sd=0.08,
        ticks_per_rev=1024,
        slip_sd=0.03,
        slip_bias_sd=0.02,
        gyro_bias_sd=0.005,
        gyro_noise_sd=0.01,
    ),
    "high": SensorNoise(
        camera_sd=16.0,
        camera_blur_px=1.2,
        brightness_sd=0.2,
        ticks_per_rev=256,
        slip_sd=0.1,
        slip_bias_sd=0.05,
        gyro_bias_sd=0.02,
        gyro_noise_sd=0.03,
    ),
}


def noise_preset(name: str) -> SensorNoise:
    """The :class:`SensorNoise` of preset ``name`` (``none``, ``default`` or ``high``)."""
    if name not in NOISE_PRESETS:
        raise ValueError(
            f"sensor noise {name!r} is not a preset; expected one of {list(NOISE_PRESETS)}"
        )
    return NOISE_PRESETS[name]


class Hardware(Protocol):
    """What the sensors read from a robot (simulated or real)."""

    def wheel_angles(self) -> tuple[float, float]: ...
    def yaw_rate(self) -> float: ...
    def camera_image(self) -> np.ndarray: ...
    def side_camera_image(self, side: int) -> np.ndarray: ...


@dataclass
class Sensors:
    """The robot's sensors on ``hardware`` with ``noise``; ``seed`` draws the gyro bias and every
    reading's noise. Encoder ticks accumulate from the first reading."""

    hardware: Hardware
    noise: SensorNoise
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.gyro_bias_radps = float(self.rng.normal(0.0, self.noise.gyro_bias_sd))
        # each side's over-count this run (fraction): slip on loose soil is always forwards
        self.slip_bias = np.abs(self.rng.normal(0.0, self.noise.slip_bias_sd, 2))
        self._angles = np.asarray(self.hardware.wheel_angles(), dtype=np.float64)
        self._sensed = np.zeros(2)  # wheel angle each encoder has counted (rad), slip included

    def encoder_ticks(self) -> tuple[int, int]:
        """Cumulative (left, right) encoder ticks since the first reading (ticks_per_rev per
        revolution; with exact encoders, 2**20 per revolution)."""
        angles = np.asarray(self.hardware.wheel_angles(), dtype=np.float64)
        step = angles - self._angles
        self._angles = angles
        step = step * (1.0 + self.slip_bias)
        if self.noise.slip_sd > 0:
            step = step * (1.0 + self.rng.normal(0.0, self.noise.slip_sd, 2))
        self._sensed += step
        per_rev = self.noise.ticks_per_rev or 2**20
        ticks = np.floor(self._sensed * per_rev / (2 * math.pi))
        return int(ticks[0]), int(ticks[1])

    @property
    def ticks_per_rev(self) -> int:
        """Encoder ticks per wheel revolution as :meth:`encoder_ticks` counts them."""
        return self.noise.ticks_per_rev or 2**20

    def gyro(self) -> float:
        """Turn rate (rad/s, + = left) with the run's bias and one reading's noise."""
        rate = float(self.hardware.yaw_rate()) + self.gyro_bias_radps
        if self.noise.gyro_noise_sd > 0:
            rate += float(self.rng.normal(0.0, self.noise.gyro_noise_sd))
        return rate

    def camera(self) -> np.ndarray:
        """The forward camera's frame (H, W, 3 uint8) with brightness change, blur and noise."""
        frame = self.hardware.camera_image()
        return degrade_frame(frame, self.noise, self.rng)

    def side_camera(self, side: int) -> np.ndarray:
        """The side camera's frame on side ``side`` (+1 left, −1 right) with the same camera noise."""
        return degrade_frame(self.hardware.side_camera_image(side), self.noise, self.rng)


def degrade_frame(rgb: np.ndarray, noise: SensorNoise, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` (H, W, 3 uint8) as a cheaper camera sees it: brightness × (1 + N(0, brightness_sd)),
    Gaussian blur of ``camera_blur_px``, pixel noise of ``camera_sd``; uint8 again."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if noise.camera_sd == noise.camera_blur_px == noise.brightness_sd == 0:
        return rgb
    out = rgb.astype(np.float32)
    if noise.brightness_sd > 0:
        out *= max(0.0, 1.0 + float(rng.normal(0.0, noise.brightness_sd)))
    if noise.camera_blur_px > 0:
        from scipy.ndimage import gaussian_filter

        blur = noise.camera_blur_px
        out = gaussian_filter(out, sigma=(blur, blur, 0), truncate=3.0)
    if noise.camera_sd > 0:
        out += noise.camera_sd * rng.standard_normal(out.shape, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
