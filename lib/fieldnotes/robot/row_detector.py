"""Crop-row detection from the forward camera: where the lane centre is and how the robot is turned.

Excess green ``2G - R - B`` (in float), an Otsu threshold, the plant pixels projected onto the ground
with the camera's known pose, and a robust line fit per row → lateral offset and heading error.
NumPy only: the motion layer (``drive``, ``control``) imports this module, never the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    (rad, + = robot turned left of the rows), the fitted rows and how many pixels supported them."""

    offset_m: float
    heading_rad: float
    ok: bool
    left: tuple[float, float] | None  # (a, b) of Y = a + b X, robot frame
    right: tuple[float, float] | None
    n_left: int
    n_right: int
    threshold: float


def plant_mask(rgb: np.ndarray, min_threshold: float = 0.08) -> tuple[np.ndarray, float]:
    """Plant pixels: excess green above its Otsu threshold (never below ``min_threshold``)."""
    exg = excess_green(rgb)
    thr = max(otsu_threshold(exg), min_threshold)
    return exg > thr, thr


def detect_rows(
    rgb: np.ndarray,
    camera: Camera,
    row_spacing: float,
    max_range_m: float = 4.0,
    min_points: int = 15,
) -> RowEstimate:
    """Find the two crop rows either side of the robot and the lane centre between them."""
    mask, thr = plant_mask(rgb)
    rr, cc = np.nonzero(mask)
    gx, gy, hit = pixel_to_ground(rr, cc, camera)
    sel = hit & (gx > 0) & (gx < max_range_m)
    gx, gy = gx[sel], gy[sel]
    half = row_spacing / 2
    lines: dict[str, tuple[float, float] | None] = {"left": None, "right": None}
    counts = {"left": 0, "right": 0}
    for side, sign in (("left", 1), ("right", -1)):
        near = np.abs(gy - sign * half) < 0.4 * row_spacing
        counts[side] = int(near.sum())
        if counts[side] >= min_points:
            lines[side] = robust_line_fit(gx[near], gy[near])
    left, right = lines["left"], lines["right"]
    if left is not None and right is not None:
        c0, c1 = (left[0] + right[0]) / 2, (left[1] + right[1]) / 2
    elif left is not None:
        c0, c1 = left[0] - half, left[1]
    elif right is not None:
        c0, c1 = right[0] + half, right[1]
    else:
        return RowEstimate(0.0, 0.0, False, None, None, counts["left"], counts["right"], thr)
    return RowEstimate(
        -c0, float(-np.arctan(c1)), True, left, right, counts["left"], counts["right"], thr
    )
