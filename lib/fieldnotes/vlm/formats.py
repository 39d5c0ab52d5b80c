"""Loaders for the real datasets' formats: SLAKE and VQA-RAD (JSON), PMC-OA (JSONL), and DICOM.

Every loader reads from a root folder the user gives. Any bad input — a file that is empty,
truncated, not UTF-8 or not JSON, a list holding something other than objects, a field that is
missing, null, NaN or of the wrong type, an image name that escapes the root (``..``, absolute
paths, symlinks out), a missing or unreadable image — is a ``ValueError`` that names the file,
the row (0-based, or the line for JSONL) and the field. Nothing is turned into the string "None".
Every row a loader drops on purpose is counted by rule in the returned report.

* SLAKE (Liu et al. 2021): ``root/<split>.json`` with split ``train``, ``validate`` or ``test``,
  images under ``root/imgs``; English (``q_lang == "en"``) or Chinese (``"zh"``) rows, one
  language per load; text is NFKC-normalised, so full-width punctuation ("？", "，") becomes ASCII.
* VQA-RAD (Lau et al. 2018): one public JSON; its official split is the ``phrase_type``
  field (``test_freeform`` and ``test_para`` are the test split, ``freeform`` and ``para`` the
  training split). VQA-RAD records the organ (``image_organ``), not the modality, so its items'
  modality is "unknown" rather than an organ mislabelled as a modality.
* DICOM: stored values through the modality LUT (RescaleSlope/Intercept; Hounsfield units only
  for CT), a VOI LUT or window from the file when present, MONOCHROME1 inverted so bright is
  dense, multi-frame files read one chosen frame.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fieldnotes.vlm.text import VQAItem, normalize_answer

SLAKE_SPLITS: tuple[str, ...] = ("train", "validate", "test")
SLAKE_LANGUAGES: tuple[str, ...] = ("en", "zh")
VQA_RAD_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("freeform", "para"),
    "test": ("test_freeform", "test_para"),
}


@dataclass
class Loaded:
    """Images (n, 1, size, size) in [0, 1], items pointing into them, image names and a drop report."""

    images: np.ndarray
    items: list[VQAItem]
    names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)


def _where(path, row: int | None = None, name: str | None = None, *, line: bool = False) -> str:
    at = str(path)
    if row is not None:
        at += f", {'line' if line else 'row'} {row}"
    if name is not None:
        at += f", field {name!r}"
    return at


def safe_path(root: str | Path, name: str) -> Path:
    """``root / name`` resolved, refusing names that escape ``root`` (absolute paths, ``..``, links out)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"image name must be a non-empty string without NUL, got {name!r}")
    base = Path(root).resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base):
        raise ValueError(f"image path {name!r} escapes the dataset root {str(base)!r}")
    return path


def load_image(root: str | Path, name: str, size: int = 64) -> np.ndarray:
    """A grayscale image from ``root/name`` resized to ``size`` x ``size``, float32 in [0, 1]; a
    missing, truncated or undecodable file is a ``ValueError`` naming it."""
    from PIL import Image

    path = safe_path(root, name)
    if not path.is_file():
        raise ValueError(f"image {name!r} not found at {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("L").resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"image {name!r} at {path} cannot be decoded: {e}") from e


def _read_json_list(path: Path) -> list:
    """The JSON list in ``path``; empty, truncated, non-UTF-8 or non-list files are a ``ValueError``."""
    if not path.is_file():
        raise ValueError(f"{path} not found (expected a JSON list of questions)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 (byte {e.start})") from e
    if not text.strip():
        raise ValueError(f"{path} is empty; expected a JSON list of questions")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        detail = (
            f"line {e.lineno}, column {e.colno}: {e.msg}"
            if isinstance(e, json.JSONDecodeError)
            else "nested too deep"
        )
        raise ValueError(f"{path} is not valid JSON ({detail})") from e
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON list of questions, got {type(data).__name__}")
    return data


def _text(rec: dict, key: str, where, *, default: str | None = None, blank_ok: bool = False) -> str:
    """Field ``key`` of ``rec`` as NFKC-normalised text: a string, or an integer / finite number
    (VQA-RAD has numeric answers). Missing or null fields take ``default`` or are an error."""
    value = rec.get(key)
    if value is None:
        if default is not None:
            return default
        raise ValueError(f"{where(key)}: missing or null")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{where(key)}: expected text, got {type(value).__name__} {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where(key)}: expected text, got {value!r}")
        value = str(int(value)) if value.is_integer() else repr(value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text and not blank_ok:
        raise ValueError(f"{where(key)}: empty")
    return text


def _answer_type(rec: dict, where) -> str:
    v = _text(rec, "answer_type", where).lower()
    if v not in ("open", "closed"):
        raise ValueError(
            f"{where('answer_type')}: must be 'OPEN' or 'CLOSED', got {rec['answer_type']!r}"
        )
    return v


def _build(path, image_root, rows: list[tuple[int, dict]], size: int, dropped: dict[str, int],
           image_key: str) -> Loaded:  # fmt: skip
    """Images (each decoded once) and items for ``rows`` of (row number, parsed row)."""
    names: list[str] = []
    index: dict[str, int] = {}
    first_row: dict[str, int] = {}
    items = []
    for row, r in rows:
        if r["image"] not in index:
            index[r["image"]], first_row[r["image"]] = len(names), row
            names.append(r["image"])
        items.append(VQAItem(index[r["image"]], r["question"], r["answer"], r["answer_type"],
                             r["question_type"], r["modality"]))  # fmt: skip
    images = []
    for n in names:
        try:
            images.append(load_image(image_root, n, size))
        except ValueError as e:
            raise ValueError(f"{_where(path, first_row[n], image_key)}: {e}") from e
    arr = np.stack(images)[:, None] if images else np.zeros((0, 1, size, size))
    return Loaded(arr.astype(np.float32), items, names, dropped)


def _rows(path: Path, data: list):
    """(row number, row dict) pairs; a row that is not a JSON object is a ``ValueError``."""
    for row, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ValueError(
                f"{_where(path, row)}: expected a JSON object, got {type(rec).__name__}"
            )
        yield row, rec, (lambda key, row=row: _where(path, row, key))


def _modality(text: str) -> str:
    """SLAKE's modality field ("CT", "MRI", "X-Ray") as the chapter's names; others kept, lower case."""
    t = text.lower().replace(" ", "")
    return {"ct": "ct", "mri": "mri", "mr": "mri", "x-ray": "x-ray", "xray": "x-ray"}.get(t, t)


def load_slake(
    root: str | Path, split: str = "test", size: int = 64, language: str = "en"
) -> Loaded:
    """SLAKE: ``root/<split>.json`` (img_name, question, answer, q_lang, answer_type, content_type,
    modality); rows of the other language are counted under "other language"."""
    if split not in SLAKE_SPLITS:
        raise ValueError(f"split must be one of {SLAKE_SPLITS} (SLAKE's file names), got {split!r}")
    if language not in SLAKE_LANGUAGES:
        raise ValueError(f"language must be one of {SLAKE_LANGUAGES}, got {language!r}")
    path = Path(root) / f"{split}.json"
    rows, dropped = [], {"other language": 0}
    for row, q, where in _rows(path, _read_json_list(path)):
        if _text(q, "q_lang", where).lower() != language:
            dropped["other language"] += 1
            continue
        rows.append((row, {"image": _text(q, "img_name", where), "question": _text(q, "question", where),
                           "answer": normalize_answer(_text(q, "answer", where)),
                           "answer_type": _answer_type(q, where),
                           "question_type": _text(q, "content_type", where, default="unknown").lower(),
                           "modality": _modality(_text(q, "modality", where))}))  # fmt: skip
    return _build(path, Path(root) / "imgs", rows, size, dropped, "img_name")


def load_vqa_rad(
    json_path: str | Path, image_root: str | Path, size: int = 64, split: str = "test"
) -> Loaded:
    """VQA-RAD's public JSON (image_name, question, answer, answer_type, question_type, phrase_type):
    the rows of the official ``split`` ("train" or "test", from ``phrase_type``); rows of the other
    split are counted under "other split", rows with a blank answer under "empty answer"."""
    if split not in VQA_RAD_SPLITS:
        raise ValueError(f"split must be one of {tuple(VQA_RAD_SPLITS)}, got {split!r}")
    path = Path(json_path)
    known = {p for ps in VQA_RAD_SPLITS.values() for p in ps}
    rows, dropped = [], {"other split": 0, "empty answer": 0}
    for row, q, where in _rows(path, _read_json_list(path)):
        phrase = _text(q, "phrase_type", where).lower()
        if phrase not in known:
            raise ValueError(
                f"{where('phrase_type')}: must be one of {sorted(known)}, got {q['phrase_type']!r}"
            )
        if phrase not in VQA_RAD_SPLITS[split]:
            dropped["other split"] += 1
            continue
        answer = normalize_answer(_text(q, "answer", where, blank_ok=True))
        if not answer:
            dropped["empty answer"] += 1
            continue
        rows.append((row, {"image": _text(q, "image_name", where), "question": _text(q, "question", where),
                           "answer": answer, "answer_type": _answer_type(q, where),
                           "question_type": _text(q, "question_type", where, default="unknown").lower(),
                           "modality": "unknown"}))  # fmt: skip
    return _build(path, image_root, rows, size, dropped, "image_name")


def load_pmc_oa(
    jsonl_path: str | Path, image_root: str | Path, size: int = 64, limit: int | None = None
):
    """PMC-OA image-caption pairs from JSONL (one ``{"image", "caption"}`` object per line).

    Returns (images (n, 1, size, size), captions, drop report); blank lines and empty captions are counted.
    """
    path = Path(jsonl_path)
    if not path.is_file():
        raise ValueError(f"{path} not found (expected JSONL image-caption pairs)")
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 (byte {e.start})") from e
    images, captions, dropped = [], [], {"blank line": 0, "empty caption": 0}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            dropped["blank line"] += 1
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"{_where(path, lineno, line=True)}: not valid JSON") from e
        if not isinstance(rec, dict):
            raise ValueError(
                f"{_where(path, lineno, line=True)}: expected a JSON object, got {type(rec).__name__}"
            )

        def where(key, lineno=lineno):
            return _where(path, lineno, key, line=True)

        caption = _text(rec, "caption", where, blank_ok=True)
        if not caption:
            dropped["empty caption"] += 1
            continue
        name = _text(rec, "image", where)
        try:
            images.append(load_image(image_root, name, size))
        except ValueError as e:
            raise ValueError(f"{where('image')}: {e}") from e
        captions.append(caption)
        if limit is not None and len(captions) >= limit:
            break
    arr = np.stack(images)[:, None] if images else np.zeros((0, 1, size, size), dtype=np.float32)
    return arr.astype(np.float32), captions, dropped


def window(values: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map values to [0, 1] with a display window (centre ``level``, ``width``, in the values' unit)."""
    if not (math.isfinite(level) and math.isfinite(width) and width > 0):
        raise ValueError(
            f"level must be finite and width finite and > 0, got level {level!r}, width {width!r}"
        )
    return np.clip((values - (level - width / 2.0)) / width, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class DicomImage:
    """One DICOM frame: ``values`` after the modality LUT, in ``unit`` ("HU" for CT, else the
    scanner's arbitrary units "a.u."), the display image in [0, 1] (bright = dense), and the
    window (level, width) used, or None when the file's VOI LUT table was applied instead."""

    values: np.ndarray
    image: np.ndarray
    window: tuple[float, float] | None
    unit: str
    modality: str


def _number(ds, key: str, path, default: float) -> float:
    """DICOM attribute ``key`` as a finite float (its first value if multi-valued), or ``default``."""
    from pydicom.multival import MultiValue

    try:
        v = ds.get(key)
        if v is None or v == "":
            return default
        x = float(v[0] if isinstance(v, MultiValue | list | tuple) else v)
    except (TypeError, ValueError, IndexError, OverflowError) as e:
        raise ValueError(f"{_where(path, name=key)}: expected a number: {e}") from e
    if not math.isfinite(x):
        raise ValueError(f"{_where(path, name=key)}: expected a finite number, got {x!r}")
    return x


def read_dicom(path: str | Path, level: float | None = None, width: float | None = None,
               frame: int | None = None) -> DicomImage:  # fmt: skip
    """Read one frame of a DICOM file (``frame`` is required for multi-frame files).

    The display mapping is the window given, else the file's VOI LUT table, else its first
    WindowCenter/WindowWidth, else the data range; MONOCHROME1 images are inverted afterwards.
    """
    import pydicom
    from pydicom.pixels import apply_voi_lut

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"DICOM file {str(path)!r} not found")
    try:
        ds = pydicom.dcmread(path)
        px = ds.pixel_array if "PixelData" in ds else None
    except (
        Exception
    ) as e:  # pydicom raises many types (EOFError, struct.error, KeyError...) on bad files
        raise ValueError(f"{path} is not a readable DICOM image: {type(e).__name__}: {e}") from e
    if px is None:
        raise ValueError(f"{_where(path, name='PixelData')}: missing")
    frames = int(_number(ds, "NumberOfFrames", path, 1))
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(
            f"{_where(path, name='PhotometricInterpretation')}: expected MONOCHROME1/2, got {photometric!r}"
        )
    if frames > 1:
        if frame is None:
            raise ValueError(
                f"{_where(path, name='NumberOfFrames')}: {frames} frames; pass frame= to choose one"
            )
        if not 0 <= frame < frames:
            raise ValueError(f"frame must be in [0, {frames}) for {path}, got {frame!r}")
        px = px[frame]
    if px.ndim != 2:
        raise ValueError(
            f"{_where(path, name='PixelData')}: expected one 2-D frame, got shape {px.shape}"
        )
    modality = str(ds.get("Modality", "")).upper() or "unknown"
    with np.errstate(over="ignore", invalid="ignore"):
        values = px.astype(np.float32) * _number(ds, "RescaleSlope", path, 1.0) + _number(
            ds, "RescaleIntercept", path, 0.0
        )
    if not np.isfinite(values).all():
        raise ValueError(
            f"{_where(path, name='RescaleSlope')}: the rescaled values overflow float32"
        )
    used: tuple[float, float] | None
    if level is None and width is None and "VOILUTSequence" in ds:
        lut = apply_voi_lut(px, ds).astype(np.float32)
        lo, hi = float(lut.min()), float(lut.max())
        image, used = ((lut - lo) / (hi - lo) if hi > lo else np.zeros_like(lut)), None
    else:
        if level is None or width is None:
            if "WindowCenter" in ds and "WindowWidth" in ds:
                level = _number(ds, "WindowCenter", path, 0.0) if level is None else level
                width = _number(ds, "WindowWidth", path, 1.0) if width is None else width
            else:
                lo, hi = float(values.min()), float(values.max())
                level = (lo + hi) / 2 if level is None else level
                width = max(hi - lo, 1.0) if width is None else width
        try:
            image, used = window(values, level, width), (float(level), float(width))
        except ValueError as e:
            raise ValueError(f"{_where(path, name='WindowWidth')}: {e}") from e
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    unit = "HU" if modality == "CT" else "a.u."
    return DicomImage(values, image.astype(np.float32), used, unit, modality)
