"""What every notebook shares: one call that seeds everything, one that records key numbers.

The runner sets ``FIELDNOTES_RESULTS_DIR`` so that the tests can read each notebook's key
numbers (a small JSON file per chapter) and compare two executions of the same notebook.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path

RESULTS_ENV = "FIELDNOTES_RESULTS_DIR"


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and (if installed) torch with one integer ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r} ({type(seed).__name__})")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # torch is a dependency, but the book's machinery does not need it
        return
    torch.manual_seed(seed)


def repo_root() -> Path | None:
    """The repository root (the folder holding pyproject.toml above lib/), or None if installed."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "lib" / "fieldnotes").is_dir():
            return parent
    return None


def results_dir() -> Path:
    """Folder where key numbers are written: ``$FIELDNOTES_RESULTS_DIR`` or ``_build/results``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    return Path.cwd() / "_build" / "results"


def _plain(value, key: str):
    """Convert NumPy/torch scalars to plain JSON numbers; reject what JSON cannot hold."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"key number {key!r} is {value}; expected a finite number")
        return value
    raise TypeError(f"key number {key!r} must be a number or string, got {type(value).__name__}")


def record_key_numbers(chapter: str, numbers: Mapping[str, object]):
    """Write a chapter's key numbers to ``<results_dir>/<chapter>.json`` and return them as a table.

    The reproducibility test executes a notebook twice and compares these files, so record
    the numbers a reader would quote (counts, accuracies, bytes), not wall-clock times.
    """
    import pandas as pd

    if not chapter or "/" in chapter:
        raise ValueError(f"chapter must be a plain name such as '01-memory', got {chapter!r}")
    if not numbers:
        raise ValueError("numbers is empty; record at least one key number")
    plain = {str(k): _plain(v, str(k)) for k, v in numbers.items()}
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{chapter}.json").write_text(json.dumps(plain, indent=2, sort_keys=True) + "\n")
    return pd.DataFrame({"key number": list(plain), "value": list(plain.values())})
