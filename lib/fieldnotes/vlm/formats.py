"""Loaders for the real datasets' formats: SLAKE and VQA-RAD (JSON), PMC-OA (JSONL), and DICOM.

Every loader reads from a root folder the user gives; image names that resolve outside that root
are rejected, a missing image is an error naming the file, and every row a loader drops is
counted by rule in the returned report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldnotes.vlm.text import VQAItem, normalize_answer


@dataclass
class Loaded:
    """Images (n, 1, size, size) in [0, 1], items pointing into them, image names and a drop report."""

    images: np.ndarray
    items: list[VQAItem]
    names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)


def safe_path(root: str | Path, name: str) -> Path:
    """``root / name`` resolved, refusing names that escape ``root`` (absolute paths, ``..``, links out)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"image name must be a non-empty string, got {name!r}")
    base = Path(root).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"image path {name!r} escapes the dataset root {str(base)!r}")
    return path


def load_image(root: str | Path, name: str, size: int = 64) -> np.ndarray:
    """A grayscale image from ``root/name`` resized to ``size`` x ``size``, float32 in [0, 1]."""
    from PIL import Image

    path = safe_path(root, name)
    if not path.is_file():
        raise FileNotFoundError(f"image {name!r} not found at {path}")
    with Image.open(path) as im:
        im = im.convert("L").resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32) / 255.0


def _modality(text: str) -> str:
    t = (text or "").lower()
    if "ct" in t:
        return "ct"
    if "mr" in t:
        return "mri"
    if "x" in t or "ray" in t:
        return "x-ray"
    return t or "unknown"


def _build(root, rows: list[dict], size: int, dropped: dict[str, int]) -> Loaded:
    names: list[str] = []
    index: dict[str, int] = {}
    items = []
    for r in rows:
        if r["image"] not in index:
            index[r["image"]] = len(names)
            names.append(r["image"])
        items.append(VQAItem(index[r["image"]], r["question"], normalize_answer(str(r["answer"])),
                             r["answer_type"], r["question_type"], r["modality"]))  # fmt: skip
    images = (
        np.stack([load_image(root, n, size) for n in names])[:, None]
        if names
        else np.zeros((0, 1, size, size))
    )
    return Loaded(images.astype(np.float32), items, names, dropped)


def _answer_type(value, name: str) -> str:
    v = str(value).strip().lower()
    if v not in ("open", "closed"):
        raise ValueError(f"{name} must be 'OPEN' or 'CLOSED', got {value!r}")
    return v


def load_slake(
    root: str | Path, split: str = "test", size: int = 64, language: str = "en"
) -> Loaded:
    """SLAKE: ``root/<split>.json`` (a list of questions with img_name, q_lang, answer_type, modality...)."""
    path = Path(root) / f"{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"SLAKE split file {path} not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON list of questions, got {type(data).__name__}")
    rows, dropped = [], {"other language": 0}
    for q in data:
        if q.get("q_lang", language) != language:
            dropped["other language"] += 1
            continue
        rows.append({"image": q["img_name"], "question": q["question"], "answer": q["answer"],
                     "answer_type": _answer_type(q["answer_type"], "answer_type"),
                     "question_type": str(q.get("content_type", "unknown")).lower(),
                     "modality": _modality(q.get("modality", ""))})  # fmt: skip
    return _build(Path(root) / "imgs", rows, size, dropped)


def load_vqa_rad(json_path: str | Path, image_root: str | Path, size: int = 64) -> Loaded:
    """VQA-RAD: the public JSON (image_name, question, answer, answer_type, question_type, image_organ)."""
    data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(
            f"{json_path} must hold a JSON list of questions, got {type(data).__name__}"
        )
    rows, dropped = [], {"empty answer": 0}
    for q in data:
        if str(q.get("answer", "")).strip() == "":
            dropped["empty answer"] += 1
            continue
        rows.append({"image": q["image_name"], "question": q["question"], "answer": q["answer"],
                     "answer_type": _answer_type(q["answer_type"], "answer_type"),
                     "question_type": str(q.get("question_type", "unknown")).lower(),
                     "modality": str(q.get("image_organ", "unknown")).lower()})  # fmt: skip
    return _build(image_root, rows, size, dropped)


def load_pmc_oa(
    jsonl_path: str | Path, image_root: str | Path, size: int = 64, limit: int | None = None
):
    """PMC-OA image-caption pairs from JSONL (one ``{"image", "caption"}`` object per line).

    Returns (images (n, 1, size, size), captions, drop report); blank lines and empty captions are counted.
    """
    images, captions, dropped = [], [], {"blank line": 0, "empty caption": 0}
    with open(jsonl_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                dropped["blank line"] += 1
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{jsonl_path}:{lineno} is not valid JSON: {e.msg}") from e
            if not str(rec.get("caption", "")).strip():
                dropped["empty caption"] += 1
                continue
            images.append(load_image(image_root, rec["image"], size))
            captions.append(str(rec["caption"]).strip())
            if limit is not None and len(captions) >= limit:
                break
    arr = np.stack(images)[:, None] if images else np.zeros((0, 1, size, size), dtype=np.float32)
    return arr.astype(np.float32), captions, dropped


def dicom_hounsfield(ds) -> np.ndarray:
    """Pixel data in Hounsfield units: stored value x RescaleSlope + RescaleIntercept (float32)."""
    px = ds.pixel_array.astype(np.float32)
    slope = float(getattr(ds, "RescaleSlope", 1.0))
    intercept = float(getattr(ds, "RescaleIntercept", 0.0))
    return px * slope + intercept


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map HU to [0, 1] with a display window (centre ``level``, ``width`` in HU), clipping outside."""
    if not width > 0:
        raise ValueError(f"width must be > 0 HU, got {width!r}")
    return np.clip((hu - (level - width / 2.0)) / width, 0.0, 1.0).astype(np.float32)


def read_dicom(path: str | Path, level: float | None = None, width: float | None = None):
    """Read a DICOM file: returns (HU array, windowed image in [0, 1], (level, width) used).

    The window is the one given, else the file's first WindowCenter/WindowWidth, else the data range.
    """
    import pydicom

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DICOM file {str(path)!r} not found")
    ds = pydicom.dcmread(path)
    hu = dicom_hounsfield(ds)

    def first(v):
        return float(v[0]) if isinstance(v, pydicom.multival.MultiValue) else float(v)

    if level is None or width is None:
        if "WindowCenter" in ds and "WindowWidth" in ds:
            level = first(ds.WindowCenter) if level is None else level
            width = first(ds.WindowWidth) if width is None else width
        else:
            lo, hi = float(hu.min()), float(hu.max())
            level = (lo + hi) / 2 if level is None else level
            width = max(hi - lo, 1.0) if width is None else width
    return hu, window(hu, level, width), (float(level), float(width))
