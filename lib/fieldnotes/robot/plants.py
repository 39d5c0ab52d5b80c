"""Close-up colour images of rapeseed flowers: fertile (male line) versus male-sterile (female line).

A rapeseed (Brassica napus) flower has four yellow petals in a cross and six stamens around a green
pistil. In a fertile flower the anthers are plump, yellow-orange and shed pollen; in a male-sterile
flower (the female line of a hybrid-breeding plot) they are small, pale and shrivelled. Everything
else — petal colour, size, pose, leaves, soil, lighting, blur, occlusion — varies for both classes,
so colour alone does not decide the class.
"""

from __future__ import annotations

import numpy as np

from fieldnotes.robot.field import FEMALE, MALE, Field

SOIL = np.array([0.42, 0.31, 0.21])
LEAF = np.array([0.22, 0.42, 0.16])


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if not 32 <= size <= 256:
        raise ValueError(f"size must be in [32, 256] pixels, got {size}")
    return int(size)


def _ellipse(u: np.ndarray, v: np.ndarray, a: float, b: float, px: float) -> np.ndarray:
    """Anti-aliased coverage (0..1) of an ellipse with semi-axes a, b (pixels) at local coords u, v."""
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return np.clip((1.0 - r) * min(a, b) / px + 0.5, 0.0, 1.0)


def _paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    img *= 1.0 - alpha[..., None]
    img += alpha[..., None] * colour


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1] (bilinear upsampling of a cells×cells grid)."""
    from scipy.ndimage import zoom

    grid = rng.random((cells, cells))
    out = zoom(grid, size / cells, order=1, mode="nearest")[:size, :size]
    return out


def flower_image(
    label: int,
    rng: np.random.Generator,
    size: int = 64,
    lighting: float = 1.0,
    background: str = "ground",
) -> np.ndarray:
    """One close-up flower image (``size``×``size``×3 uint8) of class ``label`` (0 female, 1 male).

    ``lighting`` scales how much the illumination varies (1 = the book's setting, 2 = harder).
    ``background``: ``"ground"`` (soil and leaves, a close-up looking down at the plant) or
    ``"foliage"`` (the plant's own leaves in light and shade, no soil: a flower head as its
    surface, for the simulated plot); the same random draws either way, so the flower is the same.
    """
    if background not in ("ground", "foliage"):
        raise ValueError(f"background must be 'ground' or 'foliage', got {background!r}")
    from scipy.ndimage import gaussian_filter

    if label not in (FEMALE, MALE):
        raise ValueError(f"label must be 0 (female) or 1 (male), got {label!r}")
    size = _check_size(size)
    if lighting < 0:
        raise ValueError(f"lighting must be >= 0, got {lighting}")
    s = float(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    # background: soil and leaves in smooth patches, with texture
    mix = _smooth_noise(rng, size, int(rng.integers(3, 7)))
    leafness = np.clip((mix - rng.uniform(0.3, 0.7)) * 4 + 0.5, 0, 1)[..., None]
    soil = SOIL * rng.uniform(0.8, 1.2, 3)
    leaf = LEAF * rng.uniform(0.75, 1.25, 3)
    if background == "foliage":
        soil = leaf * 0.8  # leaves in shade where the ground would show
    img = soil * (1 - leafness) + leaf * leafness
    img = img + rng.normal(0, 0.03, (size, size, 1)) + rng.normal(0, 0.015, (size, size, 3))

    scale = rng.uniform(0.75, 1.2)
    radius = 0.42 * s * scale  # flower radius in pixels
    cx = s / 2 + rng.uniform(-0.1, 0.1) * s
    cy = s / 2 + rng.uniform(-0.1, 0.1) * s
    theta = rng.uniform(0, np.pi / 2)
    tilt = rng.uniform(0.75, 1.0)  # foreshortening: the flower is seen slightly from the side
    dx, dy = xx - cx, yy - cy
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    fu = cos_t * dx + sin_t * dy
    fv = (-sin_t * dx + cos_t * dy) / tilt

    # neighbouring flower of the same plant, partly in the frame (petals only)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        ncx, ncy = cx + np.cos(ang) * radius * 1.9, cy + np.sin(ang) * radius * 1.9
        for k in range(4):
            phi = theta + 0.3 + k * np.pi / 2
            pu = np.cos(phi) * (xx - ncx) + np.sin(phi) * (yy - ncy) - 0.45 * radius
            pv = -np.sin(phi) * (xx - ncx) + np.cos(phi) * (yy - ncy)
            col = np.array([0.97, rng.uniform(0.78, 0.92), rng.uniform(0.05, 0.35)])
            _paint(img, 0.9 * _ellipse(pu, pv, 0.45 * radius, 0.3 * radius, 1.0), col)

    # four petals in a cross, yellow from pale lemon to deep golden
    petal = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.74, 0.95), rng.uniform(0.02, 0.45)])
    for k in range(4):
        phi = k * np.pi / 2 + rng.normal(0, 0.12)
        pu = np.cos(phi) * fu + np.sin(phi) * fv - 0.5 * radius
        pv = -np.sin(phi) * fu + np.cos(phi) * fv
        a, b = 0.5 * radius * rng.uniform(0.85, 1.1), 0.33 * radius * rng.uniform(0.8, 1.1)
        shade = 0.85 + 0.15 * np.clip(1 - np.abs(pu) / a, 0, 1)[..., None]
        alpha = _ellipse(pu, pv, a, b, 1.0)
        img *= 1 - alpha[..., None]
        img += alpha[..., None] * petal * shade * rng.uniform(0.93, 1.05)

    # the pistil: a green-yellow centre
    pistil = np.array([rng.uniform(0.5, 0.7), rng.uniform(0.65, 0.8), rng.uniform(0.15, 0.3)])
    _paint(img, _ellipse(fu, fv, 0.08 * radius, 0.08 * radius, 1.0), pistil)

    # six stamens: the class is in their anthers (drawn in a window around the centre)
    fertile = label == MALE
    ring = 0.2 * radius
    half = int(np.ceil(0.5 * radius)) + 2
    y0, y1 = max(int(cy) - half, 0), min(int(cy) + half, size)
    x0, x1 = max(int(cx) - half, 0), min(int(cx) + half, size)
    wu, wv, win = fu[y0:y1, x0:x1], fv[y0:y1, x0:x1], img[y0:y1, x0:x1]
    for k in range(6):
        phi = k * np.pi / 3 + rng.normal(0, 0.15)
        ru = ring * rng.uniform(0.85, 1.15)
        au = np.cos(phi) * wu + np.sin(phi) * wv - ru
        av = -np.sin(phi) * wu + np.cos(phi) * wv
        if fertile:
            a = 0.13 * radius * rng.uniform(0.8, 1.2)
            b = 0.075 * radius * rng.uniform(0.8, 1.2)
            col = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.6, 0.8), rng.uniform(0.0, 0.12)])
        else:
            a = 0.075 * radius * rng.uniform(0.7, 1.1)
            b = 0.03 * radius * rng.uniform(0.7, 1.2)
            col = np.array(
                [rng.uniform(0.8, 0.95), rng.uniform(0.72, 0.88), rng.uniform(0.35, 0.65)]
            )
        inner = _ellipse(au, av, a, b, 1.0)
        # an anther is darker at its rim
        rim = 0.35 * _ellipse(au, av, a + 0.8, b + 0.8, 1.0) * (1 - inner)
        _paint(win, rim, col * 0.55)
        _paint(win, inner, col)

    if fertile:  # loose pollen grains on the petals near the centre
        n = int(rng.integers(10, 40))
        rr = np.abs(rng.normal(0, 0.3 * radius, n)) + 0.1 * radius
        aa = rng.uniform(0, 2 * np.pi, n)
        px = np.clip((cx + rr * np.cos(aa)).astype(int), 0, size - 1)
        py = np.clip((cy + rr * np.sin(aa) * tilt).astype(int), 0, size - 1)
        img[py, px] = img[py, px] * 0.4 + 0.6 * np.array([0.98, 0.75, 0.05])

    # occlusion by a leaf or a stem in front of the flower
    if rng.random() < 0.35:
        ang = rng.uniform(0, np.pi)
        off = rng.uniform(0.2, 0.6) * radius
        lu = np.cos(ang) * dx + np.sin(ang) * dy
        lv = -np.sin(ang) * dx + np.cos(ang) * dy - off * rng.choice([-1, 1])
        occ = _ellipse(lu, lv, rng.uniform(0.6, 1.2) * s, rng.uniform(0.05, 0.15) * s, 1.0)
        _paint(img, occ, LEAF * rng.uniform(0.8, 1.3, 3))

    # lighting: brightness, colour cast, a gradient across the frame (sun and shade)
    spread = lighting
    gain = np.exp(rng.normal(0, 0.18 * spread))
    cast = np.exp(rng.normal(0, 0.05 * spread, 3))
    gdir = rng.uniform(0, 2 * np.pi)
    grad = 1 + 0.25 * spread * rng.uniform(-1, 1) * ((np.cos(gdir) * dx + np.sin(gdir) * dy) / s)
    img = img * gain * cast * grad[..., None]

    sigma = rng.uniform(0, 1.2) * s / 64
    if sigma > 0.3:
        img = gaussian_filter(img, sigma=(sigma, sigma, 0))
    img = img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_flower_dataset(
    n: int, seed: int, size: int = 64, lighting: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, size, size, 3 uint8) and labels (n,), balanced classes, from one ``seed``."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, lab in enumerate(labels):
        images[i] = flower_image(int(lab), rng, size, lighting)
    return images, labels


def plant_image(
    field: Field, plant: int, size: int = 64, lighting: float = 1.0, background: str = "ground"
) -> np.ndarray:
    """Plant ``plant``'s own close-up, of its own class (``field.plant_label``: its line's, or
    fertile for an off-type in a female row; the same image every time); the
    simulated plot textures its flower head with it (``background="foliage"``)."""
    if not 0 <= plant < field.n_plants:
        raise ValueError(f"plant must be in [0, {field.n_plants}), got {plant}")
    rng = np.random.default_rng([int(field.plant_seed[plant]), 7])
    return flower_image(int(field.plant_label[plant]), rng, size, lighting, background)
