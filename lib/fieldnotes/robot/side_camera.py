"""The side camera: it looks down at the row being inspected, finds the flower heads in its frames
and cuts a rectified close-up of each for the classifier; sightings of one plant across frames
become one mark on the map.

Geometry: the camera sits on the robot's flank (``mount_side_m`` from its centre line, at
``mount_height_m``) and looks across and down at the plane of the flower heads
(``FLOWER_HEIGHT_M``), aimed ``aim_m`` to the side; image columns run along the robot. Finding
flowers: yellow pixels (petals: red and green high, blue low), grouped into blobs; blobs closer than
a flower head on the plane are one plant, placed at its largest blob. Each plant's crop is the
``FLOWER_SIZE_M`` square around it on the plane, sampled from the frame (perspective removed) at
the classifier's input size. NumPy and SciPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLOWER_HEIGHT_M = 0.25
"""Height (m) of the flower heads' plane in the simulated plot (the stems reach 0.2 m)."""
FLOWER_SIZE_M = 0.12
"""Side (m) of the square each flower head's close-up covers in the simulated plot."""


@dataclass(frozen=True)
class SideCamera:
    """The side camera: image size (px), vertical field of view (deg), mount height (m), how far
    out on the robot's flank it sits (m from the centre line) and forward (m), where across it
    aims on the flower plane (m from the centre line), and its clipping range (m)."""

    width: int = 240
    height: int = 100
    fov_deg: float = 24.0
    mount_height_m: float = 0.8
    mount_side_m: float = 0.3
    forward_m: float = 0.0
    aim_m: float = 0.6
    near_m: float = 0.05
    far_m: float = 2.5

    def __post_init__(self) -> None:
        if not (self.width >= 16 and self.height >= 16):
            raise ValueError(f"width and height must be >= 16 px, got {self.width}, {self.height}")
        if not 1.0 <= self.fov_deg <= 120.0:
            raise ValueError(f"fov_deg must be in [1, 120] degrees, got {self.fov_deg}")
        if not self.mount_height_m > FLOWER_HEIGHT_M:
            raise ValueError(
                f"mount_height_m must be above the flowers ({FLOWER_HEIGHT_M} m), got {self.mount_height_m}"
            )


def side_view(
    pose: tuple[float, float, float], cam: SideCamera, side: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The camera's eye, target and up vector in the world (m) for a robot at ``pose``
    (x m, y m, yaw rad) with the camera on side ``side`` (+1 left, −1 right)."""
    if side not in (-1, 1):
        raise ValueError(f"side must be +1 (left) or -1 (right), got {side!r}")
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    left = np.array([-s, c, 0.0])
    fwd = np.array([c, s, 0.0])
    base = np.array([x, y, 0.0]) + cam.forward_m * fwd
    eye = base + side * cam.mount_side_m * left + [0, 0, cam.mount_height_m]
    target = base + side * cam.aim_m * left + [0, 0, FLOWER_HEIGHT_M]
    return eye, target, np.array([0.0, 0.0, 1.0])


def _basis(cam: SideCamera, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eye and the look-at basis (forward, right, up) in the robot frame (X ahead, Y left, Z up),
    as OpenGL's look-at builds it."""
    eye, target, up = side_view((0.0, 0.0, 0.0), cam, side)
    f = (target - eye) / np.linalg.norm(target - eye)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    return eye, f, r, np.cross(r, f)


def pixels_to_plane(
    rows: np.ndarray, cols: np.ndarray, cam: SideCamera, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (row, col) of a side frame projected onto the flower plane: (X ahead, Y left) in the
    robot frame (m)."""
    eye, f, r, u = _basis(cam, side)
    t = math.tan(math.radians(cam.fov_deg) / 2)
    xn = 2 * (np.asarray(cols, float) + 0.5) / cam.width - 1
    yn = 1 - 2 * (np.asarray(rows, float) + 0.5) / cam.height
    d = f[:, None] + (xn * t * cam.width / cam.height) * r[:, None] + (yn * t) * u[:, None]
    scale = (FLOWER_HEIGHT_M - eye[2]) / np.minimum(d[2], -1e-9)
    return eye[0] + scale * d[0], eye[1] + scale * d[1]


def plane_to_pixels(
    gx: np.ndarray, gy: np.ndarray, cam: SideCamera, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points on the flower plane (X ahead, Y left in the robot frame, m) as (row, col) pixel
    coordinates of a side frame (fractional; the inverse of :func:`pixels_to_plane`)."""
    eye, f, r, u = _basis(cam, side)
    t = math.tan(math.radians(cam.fov_deg) / 2)
    p = np.stack([np.asarray(gx, float), np.asarray(gy, float)], axis=0)
    d = np.concatenate([p, np.full((1,) + p.shape[1:], FLOWER_HEIGHT_M)]) - eye.reshape(
        (3,) + (1,) * (p.ndim - 1)
    )
    depth = np.tensordot(f, d, axes=1)
    xn = np.tensordot(r, d, axes=1) / depth / (t * cam.width / cam.height)
    yn = np.tensordot(u, d, axes=1) / depth / t
    return (1 - yn) * cam.height / 2 - 0.5, (xn + 1) * cam.width / 2 - 0.5


def yellow_mask(rgb: np.ndarray) -> np.ndarray:
    """Petal pixels of an (H, W, 3) uint8 frame: red and green well above blue, red bright."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return (r > 0.45) & (np.minimum(r, g) - b > 0.25) & (g > 0.55 * r)


@dataclass(frozen=True)
class Sighting:
    """One flower head found in a side frame: its centre on the flower plane in the robot frame
    (X ahead, Y left, m), its petal area (px), and its rectified crop (size × size × 3 uint8)."""

    x_m: float
    y_m: float
    area_px: int
    crop: np.ndarray


def find_flowers(
    rgb: np.ndarray,
    cam: SideCamera,
    side: int,
    crop_px: int = 64,
    min_area_px: int = 12,
) -> list[Sighting]:
    """The flower heads in a side frame, found from its pixels alone (see the module): blobs of
    petal pixels of at least ``min_area_px``, blobs within one flower head of each other merged
    (placed at the largest), heads cut by the frame's left or right edge left for the next frame;
    each with its ``crop_px`` × ``crop_px`` rectified crop."""
    from scipy.ndimage import binary_opening, label, map_coordinates

    rgb = np.asarray(rgb)
    if rgb.shape[:2] != (cam.height, cam.width):
        raise ValueError(
            f"rgb has shape {rgb.shape[:2]}, the side camera makes {(cam.height, cam.width)}"
        )
    mask = binary_opening(yellow_mask(rgb), structure=np.ones((2, 2), bool))
    labels, n = label(mask)
    if n == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    rr, cc = np.nonzero(labels)
    which = labels[rr, cc] - 1
    r_mean = np.bincount(which, rr, n) / np.maximum(areas, 1)
    c_mean = np.bincount(which, cc, n) / np.maximum(areas, 1)
    keep = np.flatnonzero(areas >= min_area_px)
    if not len(keep):
        return []
    gx, gy = pixels_to_plane(r_mean[keep], c_mean[keep], cam, side)
    order = np.argsort(-areas[keep], kind="stable")
    heads: list[int] = []
    for k in order:  # largest first; smaller blobs within a head's size belong to it
        if all(math.hypot(gx[k] - gx[h], gy[k] - gy[h]) > FLOWER_SIZE_M for h in heads):
            heads.append(int(k))
    half = FLOWER_SIZE_M / 2
    # the crop's grid on the plane: its rows run along the robot, its columns across
    grid = (np.arange(crop_px) + 0.5) / crop_px * FLOWER_SIZE_M - half
    out = []
    for k in heads:
        xs = gx[k] + grid[::-1, None] * np.ones((1, crop_px))
        ys = gy[k] + np.ones((crop_px, 1)) * grid[None, :] * -side
        pr, pc = plane_to_pixels(xs, ys, cam, side)
        if pc.min() < 0 or pc.max() > cam.width - 1 or pr.min() < 0 or pr.max() > cam.height - 1:
            continue  # the head runs off the frame: the next frame sees it whole
        crop = np.stack(
            [map_coordinates(rgb[..., ch], [pr, pc], order=1, mode="nearest") for ch in range(3)],
            axis=-1,
        )
        out.append(Sighting(float(gx[k]), float(gy[k]), int(areas[keep][k]), crop))
    return out


def to_world(pose: tuple[float, float, float], x_m: float, y_m: float) -> tuple[float, float]:
    """A robot-frame point (X ahead, Y left, m) in the world for a robot at ``pose``."""
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    return x + c * x_m - s * y_m, y + s * x_m + c * y_m


class FlowerTracks:
    """Sightings of the same plant across frames joined into one track: a sighting within
    ``merge_m`` (m, on the map) of a track's mean position joins it, else it starts a new one. A
    track's mark is its mean position and the label of its mean probability (≥ 0.5 = male)."""

    def __init__(self, merge_m: float = 0.2):
        if not (math.isfinite(merge_m) and merge_m > 0):
            raise ValueError(f"merge_m must be a finite number > 0 m, got {merge_m}")
        self.merge_m = merge_m
        self._xy: list[tuple[float, float]] = []
        self.sighting_track: list[int] = []
        self.sighting_prob: list[float] = []
        self._tag: list[tuple[float, float]] = []
        self._n_tracks = 0

    def _means(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per track: mean x, y (m), mean probability."""
        if not self._n_tracks:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        xy = np.asarray(self._xy, float)
        k = np.asarray(self.sighting_track)
        n = np.bincount(k, minlength=self._n_tracks)
        return (
            np.bincount(k, xy[:, 0], self._n_tracks) / n,
            np.bincount(k, xy[:, 1], self._n_tracks) / n,
            np.bincount(k, np.asarray(self.sighting_prob), self._n_tracks) / n,
        )

    def add(
        self, x_m: float, y_m: float, prob: float, tag: tuple[float, float] = (0.0, 0.0)
    ) -> int:
        """One sighting at world (x, y) (m) with P(male) ``prob``; returns its track's index.
        ``tag`` is (the estimate's cumulative correction along y, its travel along y since the
        last fix), both m, when it was made (see :meth:`settle`)."""
        mx, my, _ = self._means()
        track = self._n_tracks
        if len(mx):
            d = np.hypot(mx - x_m, my - y_m)
            if d.min() < self.merge_m:
                track = int(np.argmin(d))
        if track == self._n_tracks:
            self._n_tracks += 1
        self._xy.append((float(x_m), float(y_m)))
        self.sighting_track.append(track)
        self.sighting_prob.append(float(prob))
        self._tag.append((float(tag[0]), float(tag[1])))
        return track

    def settle(self, correction_m: float, fix_travel_m: float) -> None:
        """A later fix found the estimate's y off: its cumulative correction is now
        ``correction_m`` (m), and the fix came after ``fix_travel_m`` (m) of travel along y since
        the fix before it. The error it corrected grew with that travel (a wheel's over-count is a
        scale error), so a sighting made after travel ``t`` of it moves by ``t / fix_travel_m`` of
        the correction made after it — the whole of it at the fix, none at the fix before."""
        if not (math.isfinite(fix_travel_m) and fix_travel_m >= 0):
            raise ValueError(f"fix_travel_m must be a finite number >= 0 m, got {fix_travel_m}")
        moved = []
        for (x, y), (corr, travel) in zip(self._xy, self._tag, strict=True):
            share = min(travel / fix_travel_m, 1.0) if fix_travel_m > 0 else 1.0
            moved.append((x, y + (correction_m - corr) * share))
        self._xy = moved
        self._tag = [(float(correction_m), 0.0)] * len(self._tag)

    def marks(self) -> np.ndarray:
        """(T, 3): each track's mean x (m), mean y (m) and label (0 female, 1 male)."""
        mx, my, mp = self._means()
        return np.column_stack([mx, my, (mp >= 0.5).astype(np.float64)]).reshape(-1, 3)

    def mean_prob(self) -> np.ndarray:
        """(T,) each track's mean P(male)."""
        return self._means()[2]
