"""Crop-row detection from the forward camera: where the lane centre is and how the robot is turned.

Excess green ``2G - R - B`` (in float, smoothed over 3 × 3 pixels), an Otsu threshold, the points
where plants meet the soil projected onto the ground with the camera's known pose, the rows'
direction from a periodic Hough search at the known row spacing (headings to ±30°), and a robust
line fit per row → lateral offset and heading error, or "no rows". :class:`RowFilter` smooths the
estimates across frames. NumPy and SciPy only: the motion layer (``drive``, ``control``) imports this
module, never the classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

HELD_HEADING_DEG = 20.0
"""Headings (±, degrees from the rows) over which the detector is specified, and tested, to hold."""
HELD_OFFSET_M = 0.3
"""Offsets (±, metres from the lane centre) over which the detector is specified, and tested, to hold."""
HELD_OFFSET_TOL_M = 0.09
"""How far (m) one frame's offset may read from the truth over the held range, with pixel noise
of σ = 16 (tested): looser than the 5 cm cross-track target, which the filter across frames and the
controller's averaging meet, not single frames."""
HELD_HEADING_TOL_DEG = 3.0
"""How far (degrees) one frame's heading may read from the truth over the held range (tested)."""
REACH_BEYOND_LAST_M = 0.05
"""How far (m) ``RowEstimate.reach_m`` reads beyond the rows' last planting position when the row
end is in view (1.4–2.4 m ahead): measured in ``tests/test_robot_row_detector.py``."""
BEGIN_BEFORE_FIRST_M = 0.07
"""How far (m) ``RowEstimate.begin_m`` reads short of the rows' first planting position when the
robot looks at the rows from the headland, their start 0.95–1.3 m ahead (about a plant's radius:
the first plant's near edge): measured in ``tests/test_robot_row_detector.py``."""


@dataclass(frozen=True)
class Camera:
    """The forward camera: image size (px), vertical field of view (deg), mount height (m),
    downward pitch (deg) and forward offset from the robot centre (m)."""

    width: int = 128
    height: int = 96
    fov_deg: float = 60.0
    mount_height_m: float = 1.1
    pitch_deg: float = 38.0
    forward_m: float = 0.35
    plane_height_m: float = 0.12  # plant pixels are projected onto this plane (mid plant height)
    near_m: float = 0.05
    far_m: float = 12.0


def excess_green(rgb: np.ndarray) -> np.ndarray:
    """Excess green 2G − R − B per pixel, computed in float on [0, 1] channels (uint8 would wrap)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        raise ValueError(f"rgb must have shape (H, W, 3), got {rgb.shape}")
    x = rgb[..., :3].astype(np.float32)
    if rgb.dtype == np.uint8:
        x /= 255.0
    return 2 * x[..., 1] - x[..., 0] - x[..., 2]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the value that maximises the between-class variance of a histogram."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("values is empty; expected at least one finite number")
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    k = int(np.argmax(between[:-1]))
    return float(edges[k + 1])


def pixel_to_ground(
    rows: np.ndarray, cols: np.ndarray, camera: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project pixels onto the plane ``camera.plane_height_m`` above the ground: (X forward, Y left)
    in the robot frame (m), and a mask of the pixels whose ray hits that plane ahead."""
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    t = np.tan(np.radians(camera.fov_deg) / 2)
    aspect = camera.width / camera.height
    xn = 2 * (cols + 0.5) / camera.width - 1
    yn = 1 - 2 * (rows + 0.5) / camera.height
    p = np.radians(camera.pitch_deg)
    fwd = np.array([np.cos(p), 0.0, -np.sin(p)])
    up = np.array([np.sin(p), 0.0, np.cos(p)])
    right = np.array([0.0, -1.0, 0.0])
    d = fwd[:, None] + (xn * t * aspect) * right[:, None] + (yn * t) * up[:, None]
    ok = d[2] < -1e-6
    s = np.where(
        ok, -(camera.mount_height_m - camera.plane_height_m) / np.where(ok, d[2], -1.0), 0.0
    )
    gx = camera.forward_m + s * d[0]
    gy = s * d[1]
    return gx, gy, ok


def robust_line_fit(x: np.ndarray, y: np.ndarray, iterations: int = 4) -> tuple[float, float]:
    """Fit y = a + b·x by least squares, repeatedly dropping points beyond 3 robust sigmas."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2:
        raise ValueError(f"need at least 2 points to fit a line, got {x.size}")
    keep = np.ones(x.size, bool)
    a = b = 0.0
    for _ in range(iterations):
        if keep.sum() < 2:
            break
        A = np.stack([np.ones(keep.sum()), x[keep]], axis=1)
        (a, b), *_ = np.linalg.lstsq(A, y[keep], rcond=None)
        r = y - (a + b * x)
        mad = np.median(np.abs(r[keep] - np.median(r[keep])))
        new = np.abs(r) <= max(3 * 1.4826 * mad, 0.02)
        if np.array_equal(new, keep):
            break
        keep = new
    return float(a), float(b)


@dataclass
class RowEstimate:
    """What the camera says: lateral offset (m, + = robot left of the lane centre), heading error
    (rad, + = robot turned left of the rows), whether rows were seen, the fitted rows (Y = a + b·X
    in the robot frame, m), the plant pixels that supported each, Otsu's threshold, how sharply
    the plant pixels line up at the row spacing (0–1), how far ahead the rows reach (m) and how far
    ahead they begin (m; the frame's near edge when the robot is among them)."""

    offset_m: float
    heading_rad: float
    ok: bool
    left: tuple[float, float] | None  # (a, b) of Y = a + b X, robot frame
    right: tuple[float, float] | None
    n_left: int
    n_right: int
    threshold: float
    alignment: float = 0.0
    reach_m: float = 0.0
    begin_m: float = 0.0


NO_ROWS = RowEstimate(0.0, 0.0, False, None, None, 0, 0, float("nan"))
"""The estimate before any frame: no rows seen."""


def plant_mask(
    rgb: np.ndarray, min_threshold: float = 0.08, smooth_px: int = 3
) -> tuple[np.ndarray, float]:
    """Plant pixels: excess green, averaged over ``smooth_px`` × ``smooth_px`` pixels (sensor noise
    averages out, plants do not), above its Otsu threshold (never below ``min_threshold``)."""
    from scipy.ndimage import uniform_filter

    if isinstance(smooth_px, bool) or not isinstance(smooth_px, int) or smooth_px < 1:
        raise ValueError(f"smooth_px must be an int >= 1, got {smooth_px!r}")
    exg = excess_green(rgb)
    if smooth_px > 1:
        exg = uniform_filter(exg, size=smooth_px, mode="nearest")
    thr = max(otsu_threshold(exg), min_threshold)
    return exg > thr, thr


def plant_base_points(
    mask: np.ndarray, camera: Camera, max_range_m: float = 4.0, soil_px: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Where the plants meet the soil, on the ground in the robot frame (X forward, Y left, m).

    A plant pixel with soil below it in the image (``soil_px`` pixels of it) is the bottom of a
    stem: that point lies on the ground, so it projects onto the ground plane exactly. Every other
    plant pixel stands above the ground, and projecting it onto any one plane smears each plant
    along the camera's ray, which tilts a fitted row toward the rays (by about 3° at a 20°
    heading). A pixel or two of soil colour inside the foliage (a gap between leaves, brown in a
    flower head) is not the ground, hence the run of soil asked for."""
    if isinstance(soil_px, bool) or not isinstance(soil_px, int) or soil_px < 1:
        raise ValueError(f"soil_px must be an int >= 1, got {soil_px!r}")
    mask = np.asarray(mask, bool)
    base = mask.copy()
    for k in range(1, soil_px + 1):
        base[:-k] &= ~mask[k:]
    base[-soil_px:] = False  # the frame's bottom edge cuts through plants: not where they stand
    rr, cc = np.nonzero(base)
    gx, gy, hit = pixel_to_ground(rr, cc, replace(camera, plane_height_m=0.0))
    sel = hit & (gx > 0) & (gx < max_range_m)
    return gx[sel], gy[sel]


def row_direction(
    gx: np.ndarray, gy: np.ndarray, row_spacing: float, max_angle_rad: float, step_rad: float
) -> tuple[float, float, float]:
    """The rows' direction in the robot frame by a periodic Hough search: for each candidate angle φ
    the ground points' distance across the rows ``u = Y cos φ − X sin φ`` (m) is wrapped at the row
    spacing; parallel rows make those phases agree. Returns (φ rad, phase u0 m of the rows, the
    alignment 0–1: the mean resultant length of the phases at φ)."""
    angles = np.arange(-max_angle_rad, max_angle_rad + step_rad / 2, step_rad)
    u = gy[None, :] * np.cos(angles)[:, None] - gx[None, :] * np.sin(angles)[:, None]
    z = np.exp(2j * np.pi * u / row_spacing).mean(axis=1)
    k = int(np.argmax(np.abs(z)))
    phase = float(np.angle(z[k])) * row_spacing / (2 * np.pi)
    return float(angles[k]), phase, float(np.abs(z[k]))


def consensus_line(
    gx: np.ndarray,
    gy: np.ndarray,
    angle_rad: float,
    search_rad: float = math.radians(6.0),
    step_rad: float = math.radians(0.5),
    tolerance_m: float = 0.08,
) -> np.ndarray:
    """The points (a boolean mask) on the line, within ``search_rad`` of the direction
    ``angle_rad``, that lies within ``tolerance_m`` of the most of them: a Hough vote per row, so a
    weed or two beside the row cannot drag the fit the way they drag least squares."""
    best, mask = -1, np.zeros(gx.size, bool)
    for angle in np.arange(angle_rad - search_rad, angle_rad + search_rad + step_rad / 2, step_rad):
        u = gy * np.cos(angle) - gx * np.sin(angle)
        order = np.sort(u)
        counts = np.searchsorted(order, order + 2 * tolerance_m, side="right") - np.arange(u.size)
        k = int(np.argmax(counts))
        if counts[k] > best:
            best = int(counts[k])
            centre = order[k] + tolerance_m
            mask = np.abs(u - centre) <= tolerance_m
    return mask


def detect_rows(
    rgb: np.ndarray,
    camera: Camera,
    row_spacing: float,
    max_range_m: float = 4.0,
    min_points: int = 15,
    max_heading_deg: float = 30.0,
    min_alignment: float = 0.5,
    min_depth_m: float = 0.5,
) -> RowEstimate:
    """Find the crop rows either side of the robot and the lane centre between them.

    Plant pixels are projected onto the ground (robot frame, within ``max_range_m``); the rows'
    direction and phase come from :func:`row_direction` (headings within ``max_heading_deg``), then
    the row left and the row right of the robot are each fitted with :func:`robust_line_fit` on the
    points within a quarter spacing of it. A row counts if ``min_points`` pixels support it and they
    span at least ``min_depth_m`` forward (weeds are blobs, rows are lines); with no row, or pixels
    that do not line up at the row spacing (alignment below ``min_alignment``), it says no rows.
    """
    if not (np.isfinite(row_spacing) and row_spacing > 0):
        raise ValueError(f"row_spacing must be a finite number > 0 m, got {row_spacing}")
    mask, thr = plant_mask(rgb)
    gx, gy = plant_base_points(mask, camera, max_range_m)
    if gx.size < min_points:
        return RowEstimate(0.0, 0.0, False, None, None, 0, 0, thr)
    phi, phase, alignment = row_direction(
        gx, gy, row_spacing, np.radians(max_heading_deg), np.radians(1.0)
    )
    u = gy * np.cos(phi) - gx * np.sin(phi)
    # the lane centre nearest the robot: half a spacing from the rows' phase, wrapped into
    # [-spacing/2, spacing/2) (so offsets beyond half a spacing read as the next lane's)
    half = row_spacing / 2
    centre = (phase + half + half) % row_spacing - half
    lines: dict[str, tuple[float, float] | None] = {"left": None, "right": None}
    counts = {"left": 0, "right": 0}
    reach, begin = 0.0, math.inf
    for side, sign in (("left", 1), ("right", -1)):
        near = np.abs(u - (centre + sign * half)) < row_spacing / 6
        counts[side] = int(near.sum())
        if counts[side] < min_points:
            continue
        depth = np.percentile(gx[near], [5, 95])
        if depth[1] - depth[0] < min_depth_m:
            continue
        on_row = consensus_line(gx[near], gy[near], phi)
        if on_row.sum() < min_points:
            continue
        lines[side] = robust_line_fit(gx[near][on_row], gy[near][on_row])
        reach = max(reach, float(depth[1]))
        begin = min(begin, float(depth[0]))
    left, right = lines["left"], lines["right"]
    if alignment < min_alignment or (left is None and right is None):
        return RowEstimate(
            0.0, 0.0, False, None, None, counts["left"], counts["right"], thr, alignment
        )
    if left is not None and right is not None:
        c0, c1 = (left[0] + right[0]) / 2, (left[1] + right[1]) / 2
    elif left is not None:
        c1 = left[1]
        c0 = left[0] - half * np.sqrt(1 + c1**2)
    else:
        c1 = right[1]
        c0 = right[0] + half * np.sqrt(1 + c1**2)
    heading = float(-np.arctan(c1))
    return RowEstimate(
        float(-c0 * np.cos(heading)),
        heading,
        True,
        left,
        right,
        counts["left"],
        counts["right"],
        thr,
        alignment,
        reach,
        begin,
    )


@dataclass
class RowFilter:
    """A Kalman filter over (offset m, heading rad) across camera frames.

    Between frames the robot's own motion predicts both (offset grows by v·sin(heading)·dt, the
    heading by the turn rate × dt); a frame's estimate then corrects them, weighted by the noise
    levels below. A frame that disagrees by more than ``gate`` (Mahalanobis distance², χ² with two
    degrees of freedom: 13.8 is the 0.1 % tail) is set aside; after ``max_misses`` frames in a row
    without an accepted estimate the filter says it has lost the rows, and the next frame that sees
    rows starts it afresh.
    """

    offset_sd_m: float = 0.03  # one frame's offset noise
    heading_sd_rad: float = 0.02  # one frame's heading noise
    drift_sd_m: float = 0.02  # offset the prediction loses per metre driven
    turn_sd_rad: float = 0.02  # heading the prediction loses per second
    gate: float = 13.8
    max_misses: int = 5
    state: np.ndarray | None = None  # (offset, heading) or None before the rows are found
    cov: np.ndarray | None = None
    misses: int = 0

    def __post_init__(self) -> None:
        for name in ("offset_sd_m", "heading_sd_rad", "drift_sd_m", "turn_sd_rad", "gate"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if self.max_misses < 1:
            raise ValueError(f"max_misses must be >= 1 frame, got {self.max_misses}")

    def predict(self, v_mps: float, omega_radps: float, dt: float) -> None:
        """Move the estimate with the robot: speed ``v_mps`` (m/s), turn rate ``omega_radps``
        (rad/s, + = left) for ``dt`` seconds."""
        if self.state is None:
            return
        offset, heading = self.state
        self.state = np.array([offset + v_mps * math.sin(heading) * dt, heading + omega_radps * dt])
        jac = np.array([[1.0, v_mps * math.cos(heading) * dt], [0.0, 1.0]])
        q = np.diag([(self.drift_sd_m * abs(v_mps) * dt) ** 2, (self.turn_sd_rad * dt) ** 2])
        self.cov = jac @ self.cov @ jac.T + q

    def update(self, estimate: RowEstimate) -> RowEstimate:
        """Fold in one frame's ``estimate``; returns the filtered estimate (``ok`` False while the
        rows are lost)."""
        r = np.diag([self.offset_sd_m**2, self.heading_sd_rad**2])
        if estimate.ok:
            z = np.array([estimate.offset_m, estimate.heading_rad])
            if self.state is None or self.misses >= self.max_misses:
                self.state, self.cov, self.misses = z, r.copy(), 0
            else:
                s = self.cov + r
                innovation = z - self.state
                if float(innovation @ np.linalg.solve(s, innovation)) <= self.gate:
                    gain = self.cov @ np.linalg.inv(s)
                    self.state = self.state + gain @ innovation
                    self.cov = (np.eye(2) - gain) @ self.cov
                    self.misses = 0
                else:
                    self.misses += 1
        else:
            self.misses += 1
        return self.current(estimate)

    def current(self, frame: RowEstimate = NO_ROWS) -> RowEstimate:
        """The filtered estimate, with the fitted rows and counts of ``frame``."""
        if self.state is None or self.misses >= self.max_misses:
            return replace(frame, offset_m=0.0, heading_rad=0.0, ok=False)
        return replace(
            frame, offset_m=float(self.state[0]), heading_rad=float(self.state[1]), ok=True
        )


def frame_report(offset_m: float, heading_rad: float, true_offset_m: float, true_heading_rad: float) -> dict:
    """One frame's reading (offset m left of the lane centre, heading rad, + = left) against the
    truth, for the page: the readings and truths (cm, °), the errors (cm, °), whether they are
    within the single-frame tolerance the tests hold (``HELD_*_TOL``), in words, and whether both
    read smaller than the truth (toward zero), in words."""
    values = (offset_m, heading_rad, true_offset_m, true_heading_rad)
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"the readings and the truth must be finite, got {values}")
    off_err = abs(offset_m - true_offset_m)
    head_err = abs(math.degrees(heading_rad - true_heading_rad))
    within = off_err <= HELD_OFFSET_TOL_M and head_err <= HELD_HEADING_TOL_DEG
    shrinks = abs(offset_m) < abs(true_offset_m) and abs(heading_rad) < abs(true_heading_rad)
    return {
        "frame_offset_err_cm": 100 * off_err,
        "frame_heading_err_deg": head_err,
        "frame_within_tol": "within" if within else "outside",
        "frame_offset_read_cm": 100 * offset_m,
        "frame_offset_true_cm": 100 * true_offset_m,
        "frame_heading_read_deg": math.degrees(heading_rad),
        "frame_heading_true_deg": math.degrees(true_heading_rad),
        "frame_shrink": "both read smaller than the truth, toward zero. An under-read toward zero "
        "is not pixel noise (that would scatter both ways); its cause has not been found, so on "
        "this page it is a systematic, unexplained error of the detector, which the tolerance "
        "below absorbs rather than explains"
        if shrinks
        else "they do not both read smaller than the truth",
    }
