"""Synthetic radiology scans with ground truth: CT slices, chest X-rays and brain MRI.

Every scan is drawn procedurally in continuous coordinates ``x, y`` in ``[-1, 1]`` (image
columns left to right, rows top to bottom) and rasterised at any size. Images follow the
radiological convention: the patient's *left* is on the image's *right* (``x > 0``).

* CT: an axial chest slice built in Hounsfield units (air -1000, lung -850, fat -100, soft
  tissue 40, bone 700), Gaussian noise in HU, then a window (level -300 HU, width 1600 HU).
* X-ray: a projection: the attenuation of ellipsoids and bands is integrated along the beam
  (analytic chord lengths) and the film brightness is ``1 - exp(-line integral)``.
* MRI: an axial T1-like brain slice (scalp, skull, grey and white matter, ventricles) multiplied
  by a smooth bias field, with Rician noise.

Findings carry attributes: a nodule or tumour (side, size class, diameter in mm), a pleural
effusion (side), a fracture (vertebra on CT, rib on X-ray, with side), or none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODALITIES: tuple[str, ...] = ("ct", "x-ray", "mri")
FINDINGS: dict[str, tuple[str, ...]] = {
    "ct": ("none", "nodule", "effusion", "fracture"),
    "x-ray": ("none", "nodule", "effusion", "fracture"),
    "mri": ("none", "tumour"),
}
FIELD_OF_VIEW_MM: dict[str, float] = {"ct": 350.0, "x-ray": 350.0, "mri": 200.0}
CT_WINDOW_HU: tuple[float, float] = (-300.0, 1600.0)  # (level, width)
HU = {"air": -1000.0, "lung": -850.0, "fat": -100.0, "tissue": 40.0, "blood": 50.0,
      "fluid": 15.0, "marrow": 250.0, "bone": 700.0, "nodule": 35.0}  # fmt: skip


@dataclass(frozen=True)
class Scan:
    """One generated scan: a float32 image in [0, 1] and its ground truth."""

    image: np.ndarray
    modality: str
    finding: str
    side: str | None  # "left" / "right" (patient side) or None
    organ: str | None  # abnormal organ, e.g. "lung", "spine", "ribs", "brain"
    location: str | None  # answer to "where", e.g. "left lung", "spine", "right hemisphere"
    size: str | None  # "small" / "large" for nodules and tumours
    size_mm: float | None  # lesion diameter in millimetres

    @property
    def abnormal(self) -> bool:
        """True when the scan has a finding."""
        return self.finding != "none"


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] as (x, y) arrays of shape (size, size)."""
    c = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(c, c, indexing="ij")
    return x, y


def _ellipse(x, y, cx, cy, a, b, angle: float = 0.0) -> np.ndarray:
    """Boolean mask of a (rotated) ellipse with centre (cx, cy) and semi-axes a, b."""
    ca, sa = np.cos(angle), np.sin(angle)
    u = (x - cx) * ca + (y - cy) * sa
    v = -(x - cx) * sa + (y - cy) * ca
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _chord(x, y, cx, cy, a, b) -> np.ndarray:
    """Normalised chord length of an ellipsoid along the beam: 2*sqrt(1 - r^2), 0 outside."""
    r2 = ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2
    return 2.0 * np.sqrt(np.clip(1.0 - r2, 0.0, None))


def _lesion(rng, finding: str, modality: str):
    """Draw the size class, radius (image units) and diameter (mm) of a nodule or tumour."""
    size = str(rng.choice(["small", "large"]))
    if modality == "mri":
        r = rng.uniform(0.09, 0.12) if size == "small" else rng.uniform(0.16, 0.21)
    else:
        r = rng.uniform(0.05, 0.07) if size == "small" else rng.uniform(0.10, 0.14)
    return size, float(r), float(2 * r * FIELD_OF_VIEW_MM[modality] / 2)


def _ct(rng, size: int, finding: str, side: str | None):
    """Axial chest CT in HU, windowed to [0, 1]; returns (image, size, size_mm)."""
    x, y = _grid(size)
    hu = np.full((size, size), HU["air"])
    bw, bh = rng.uniform(0.80, 0.90), rng.uniform(0.58, 0.68)
    hu[_ellipse(x, y, 0, 0.05, bw, bh)] = HU["fat"]
    hu[_ellipse(x, y, 0, 0.05, bw * 0.92, bh * 0.88)] = HU["tissue"]
    lungs = {}
    for s, sx in (("right", -1.0), ("left", 1.0)):
        cx = sx * rng.uniform(0.34, 0.40)
        m = _ellipse(x, y, cx, 0.0, rng.uniform(0.24, 0.29), rng.uniform(0.36, 0.42))
        hu[m] = HU["lung"]
        lungs[s] = (m, cx)
    hu[_ellipse(x, y, rng.uniform(0.0, 0.1), -0.12, 0.22, 0.19)] = HU["blood"]
    for k in range(7):  # ribs as small bone cross-sections along the chest wall
        for sx in (-1.0, 1.0):
            t = 0.35 + k * 0.33
            hu[
                _ellipse(x, y, sx * bw * 0.86 * np.sin(t), 0.05 - bh * 0.8 * np.cos(t), 0.04, 0.03)
            ] = HU["bone"]
    vy, vr = 0.43, rng.uniform(0.13, 0.15)
    hu[_ellipse(x, y, 0, vy, vr, vr * 0.9)] = HU["bone"]
    hu[_ellipse(x, y, 0, vy, vr * 0.7, vr * 0.6)] = HU["marrow"]
    hu[_ellipse(x, y, 0, vy + vr + 0.04, 0.05, 0.04)] = HU["tissue"]  # spinal canal
    lesion = (None, None)
    if finding == "nodule":
        lsize, r, mm = _lesion(rng, finding, "ct")
        m, cx = lungs[side]
        ny = rng.uniform(-0.2, 0.15)
        nx = cx + rng.uniform(-0.06, 0.06)
        hu[_ellipse(x, y, nx, ny, r, r * rng.uniform(0.85, 1.0))] = HU["nodule"]
        lesion = (lsize, mm)
    elif finding == "effusion":
        m, _ = lungs[side]
        level = rng.uniform(0.05, 0.18)  # dependent (posterior) fluid below this row
        hu[m & (y > level)] = HU["fluid"]
    elif finding == "fracture":
        ang = rng.uniform(-0.6, 0.6)
        band = np.abs((x - rng.uniform(-0.04, 0.04)) * np.cos(ang) + (y - vy) * np.sin(ang)) < 0.035
        hu[band & _ellipse(x, y, 0, vy, vr * 1.05, vr)] = HU["tissue"]
        shift = _ellipse(x, y, -0.05 if side == "right" else 0.05, vy + 0.02, vr * 0.45, vr * 0.4)
        hu[shift & (x * (1 if side == "left" else -1) > 0.08)] = HU["bone"]
    hu = hu + rng.normal(0.0, 25.0, hu.shape)
    level, width = CT_WINDOW_HU
    img = np.clip((hu - (level - width / 2)) / width, 0.0, 1.0)
    return img, lesion


def _xray(rng, size: int, finding: str, side: str | None):
    """Chest X-ray as a projection: film brightness 1 - exp(-integrated attenuation)."""
    x, y = _grid(size)
    bw = rng.uniform(0.80, 0.90)
    att = 0.9 * _chord(x, y, 0, 0.1, bw, 1.3)  # soft tissue of the trunk
    lungs = {}
    for s, sx in (("right", -1.0), ("left", 1.0)):
        cx, a, b = sx * rng.uniform(0.36, 0.42), rng.uniform(0.25, 0.30), rng.uniform(0.52, 0.60)
        lungs[s] = (cx, a, b)
        att -= 0.55 * _chord(x, y, cx, -0.05, a, b)  # air replaces tissue
    att += 0.35 * _chord(x, y, rng.uniform(0.05, 0.12), 0.2, 0.25, 0.25)  # heart
    att += 0.6 * (np.abs(x) < 0.07)  # spine
    rib_masks = {"left": [], "right": []}
    for s, sx in (("right", -1.0), ("left", 1.0)):
        for k in range(5):
            y0 = -0.55 + k * 0.2
            curve = y0 + 0.5 * (np.abs(x) - 0.1) ** 2 * (1 if sx > 0 else 1)
            band = (np.abs(y - curve) < 0.03) & (np.sign(x) == sx) & (np.abs(x) > 0.08)
            band &= np.abs(x) < 0.78
            rib_masks[s].append(band)
    for s in ("left", "right"):
        for band in rib_masks[s]:
            att += 0.35 * band
    lesion = (None, None)
    cx, a, b = lungs[side] if side else (0.0, 0.0, 0.0)
    if finding == "nodule":
        lsize, r, mm = _lesion(rng, finding, "x-ray")
        ny, nx = rng.uniform(-0.35, 0.2), cx + rng.uniform(-0.08, 0.08)
        att += 0.9 * _chord(x, y, nx, ny, r, r) / 2 + 0.25 * (
            ((x - nx) ** 2 + (y - ny) ** 2) < r**2
        )
        lesion = (lsize, mm)
    elif finding == "effusion":
        level = rng.uniform(0.15, 0.3)
        meniscus = level - 0.25 * ((x - cx) * np.sign(cx)) ** 2 * 4
        inside = ((x - cx) / a) ** 2 + ((y + 0.05) / b) ** 2 <= 1.05
        att += 0.8 * (inside & (y > meniscus))
    elif finding == "fracture":
        k = int(rng.integers(1, 4))
        band = rib_masks[side][k]
        gx = cx + rng.uniform(-0.05, 0.05)
        gap = band & (np.abs(x - gx) < 0.04)
        att -= 0.35 * gap
        lateral = band & (np.abs(x) > np.abs(gx) + 0.04)
        att -= 0.35 * lateral
        shifted = np.roll(lateral, max(1, size // 40), axis=0)
        att += 0.35 * shifted
    att = np.clip(att, 0.0, None)
    img = 1.0 - np.exp(-0.7 * att)
    img = img + rng.normal(0.0, 0.02, img.shape)
    return np.clip(img / 0.8, 0.0, 1.0), lesion


def _mri(rng, size: int, finding: str, side: str | None):
    """Axial T1-like brain MRI with a smooth bias field and Rician noise."""
    x, y = _grid(size)
    img = np.zeros((size, size))
    a, b = rng.uniform(0.68, 0.76), rng.uniform(0.82, 0.9)
    img[_ellipse(x, y, 0, 0, a, b)] = 0.8  # scalp fat
    img[_ellipse(x, y, 0, 0, a * 0.94, b * 0.95)] = 0.08  # skull (no signal)
    img[_ellipse(x, y, 0, 0, a * 0.88, b * 0.9)] = 0.5  # grey matter
    img[_ellipse(x, y, 0, 0, a * 0.72, b * 0.76)] = 0.68  # white matter
    shift = 0.0
    lesion = (None, None)
    sx = 1.0 if side == "left" else -1.0
    if finding == "tumour":
        lsize, r, mm = _lesion(rng, finding, "mri")
        shift = -sx * (0.04 if lsize == "small" else 0.09)  # mass effect pushes midline
        tx, ty = sx * rng.uniform(0.3, 0.4), rng.uniform(-0.35, 0.35)
        img[_ellipse(x, y, tx, ty, r * 1.5, r * 1.4)] = 0.42  # oedema
        img[_ellipse(x, y, tx, ty, r, r * 0.9)] = 0.97  # enhancing rim
        img[_ellipse(x, y, tx, ty, r * 0.6, r * 0.5)] = 0.3  # necrotic core
        lesion = (lsize, mm)
    for vx in (-0.1, 0.1):  # lateral ventricles
        img[_ellipse(x, y, vx + shift, -0.05, 0.07, 0.28, angle=-np.sign(vx) * 0.3)] = 0.15
    coef = rng.uniform(-0.25, 0.25, 4)
    bias = 1.0 + coef[0] * x + coef[1] * y + coef[2] * x * y + coef[3] * (x**2 - y**2)
    img = img * bias
    sigma = 0.03
    img = np.sqrt(
        (img + rng.normal(0, sigma, img.shape)) ** 2 + rng.normal(0, sigma, img.shape) ** 2
    )
    return np.clip(img, 0.0, 1.0), lesion


_DRAW = {"ct": _ct, "x-ray": _xray, "mri": _mri}


def _truth(modality: str, finding: str, side: str | None) -> tuple[str | None, str | None]:
    """Abnormal organ and location phrase for a finding."""
    if finding == "none":
        return None, None
    if finding in ("nodule", "effusion"):
        return "lung", f"{side} lung"
    if finding == "fracture":
        return ("spine", "spine") if modality == "ct" else ("ribs", f"{side} ribs")
    return "brain", f"{side} hemisphere"


def make_scan(
    seed: int, size: int = 64, modality: str | None = None, finding: str | None = None
) -> Scan:
    """Generate one scan deterministically from ``seed``; modality/finding drawn unless given."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 pixels, got {size!r}")
    rng = np.random.default_rng(seed)
    mod = modality if modality is not None else str(rng.choice(MODALITIES))
    if mod not in FINDINGS:
        raise ValueError(f"modality must be one of {MODALITIES}, got {mod!r}")
    fin = finding if finding is not None else str(rng.choice(FINDINGS[mod]))
    if fin not in FINDINGS[mod]:
        raise ValueError(f"finding must be one of {FINDINGS[mod]} for {mod}, got {fin!r}")
    side = None if fin == "none" else str(rng.choice(["left", "right"]))
    img, (lsize, mm) = _DRAW[mod](rng, size, fin, side)
    organ, location = _truth(mod, fin, side)
    if fin == "fracture" and mod == "ct":
        side = None  # a vertebral fracture is midline: no side in the ground truth
    return Scan(img.astype(np.float32), mod, fin, side, organ, location, lsize, mm)


def make_scans(n: int, seed: int, size: int = 64) -> list[Scan]:
    """``n`` scans from split ``seed``: scan i uses the child seed (seed, i), so splits never overlap."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    children = np.random.SeedSequence([seed, 0x5CA7]).spawn(n)
    return [make_scan(int(c.generate_state(1)[0]), size) for c in children]


def images_array(scans: list[Scan]) -> np.ndarray:
    """Stack scan images into a float32 array of shape (n, 1, size, size)."""
    return np.stack([s.image for s in scans])[:, None].astype(np.float32)
