"""A general (non-medical) image domain: grey shapes on textured backgrounds.

It plays the part of ImageNet / web image-text data: the *general* encoder is pre-trained on it,
and the *general* VLM (the BLIP-2 analogue) is aligned and instruction-tuned on its captions and
questions before it is asked medical questions zero-shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fieldnotes.vlm.data import _grid
from fieldnotes.vlm.text import VQAItem

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
PLACES: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right")


@dataclass(frozen=True)
class ShapeImage:
    """A float32 image in [0, 1] with its main shape, where it is, its size and all shapes present."""

    image: np.ndarray
    shape: str
    place: str
    size: str
    present: tuple[str, ...]


def _draw(x, y, kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean mask of a circle, square or triangle centred at (cx, cy) with half-size r."""
    if kind == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if kind == "square":
        return (np.abs(x - cx) <= r * 0.85) & (np.abs(y - cy) <= r * 0.85)
    return (y - cy <= r * 0.8) & (y - cy >= -r + 2 * np.abs(x - cx))


def make_shape_image(seed: int, size: int = 64) -> ShapeImage:
    """One image: a main shape in a quadrant plus maybe a small distractor, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    x, y = _grid(size)
    g = rng.uniform(-0.3, 0.3, 3)
    img = 0.45 + 0.15 * (g[0] * x + g[1] * y) + 0.05 * np.sin(8 * g[2] * x * y * np.pi)
    kind = str(rng.choice(SHAPES))
    place_i = int(rng.integers(4))
    big = bool(rng.random() < 0.5)
    r = rng.uniform(0.32, 0.42) if big else rng.uniform(0.16, 0.22)
    cx = (0.45 if place_i % 2 else -0.45) + rng.uniform(-0.08, 0.08)
    cy = (0.45 if place_i >= 2 else -0.45) + rng.uniform(-0.08, 0.08)
    level = rng.choice([0.1, 0.9])
    img[_draw(x, y, kind, cx, cy, r)] = level
    present = {kind}
    if rng.random() < 0.5:  # a small distractor in the opposite quadrant
        other = str(rng.choice(SHAPES))
        img[_draw(x, y, other, -cx, -cy, 0.1)] = 1.0 - level
        present.add(other)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1).astype(np.float32)
    return ShapeImage(
        img, kind, PLACES[place_i], "large" if big else "small", tuple(sorted(present))
    )


def make_shape_images(n: int, seed: int, size: int = 64) -> list[ShapeImage]:
    """``n`` shape images from split ``seed``."""
    children = np.random.SeedSequence([seed, 0x54A9]).spawn(n)
    return [make_shape_image(int(c.generate_state(1)[0]), size) for c in children]


def shape_labels(items: list[ShapeImage]) -> np.ndarray:
    """Class index of the general pre-training task: main shape x quadrant (12 classes)."""
    return np.array(
        [SHAPES.index(s.shape) * 4 + PLACES.index(s.place) for s in items], dtype=np.int64
    )


def shape_captions(items: list[ShapeImage], seed: int) -> list[str]:
    """A caption per image ("a large circle at the top left .")."""
    rng = np.random.default_rng([seed, 0x5C])
    forms = ["a {s} {k} at the {p} .", "there is a {s} {k} in the {p} .", "{s} {k} , {p} ."]
    return [forms[int(rng.integers(3))].format(s=i.size, k=i.shape, p=i.place) for i in items]


def shape_vqa(items: list[ShapeImage], seed: int) -> list[VQAItem]:
    """Three questions per image: a closed presence question and two open ones."""
    rng = np.random.default_rng([seed, 0x5B])
    out = []
    for idx, it in enumerate(items):
        asked = str(rng.choice(SHAPES))
        out.append(VQAItem(idx, f"is there a {asked}?", "yes" if asked in it.present else "no",
                           "closed", "presence", "photo"))  # fmt: skip
        kind = int(rng.integers(3))
        if kind == 0:
            out.append(
                VQAItem(idx, "what is the main shape?", it.shape, "open", "finding", "photo")
            )
        elif kind == 1:
            out.append(
                VQAItem(idx, f"where is the {it.shape}?", it.place, "open", "location", "photo")
            )
        else:
            out.append(
                VQAItem(idx, f"how large is the {it.shape}?", it.size, "open", "size", "photo")
            )
    return out
