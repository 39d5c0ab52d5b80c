"""What every notebook shares: one call that seeds everything, one that records key numbers,
one that hands a measured figure to the prose.

The runner sets ``FIELDNOTES_RESULTS_DIR`` so that the tests can read each notebook's key
numbers (a small JSON file per chapter) and compare two executions of the same notebook.

Prose never types a measured figure: a code cell calls ``glue("closed_acc", 0.922)`` and the
markdown says ``{glue:text}`closed_acc:.1%```; Jupyter Book pastes the value from the executed
notebook, so the page and the output beside it cannot disagree. Wall-clock times are glued with
``wall_time=True``: the rerun check (same parameters, same figures) skips them.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path

RESULTS_ENV = "FIELDNOTES_RESULTS_DIR"
#: The MIME prefix myst-nb (and scrapbook before it) uses for glued values in a cell's outputs.
GLUE_PREFIX = "application/papermill.record/"
#: Key under an output's metadata where ``glue`` notes what kind of figure it is.
GLUE_KIND = "fieldnotes"


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


def glue(name: str, value, *, wall_time: bool = False) -> None:
    """Store a measured figure in the executed notebook for the prose to paste.

    ``value`` is a number (NumPy and torch scalars are converted to plain Python) or a short
    string, such as a verdict computed from the results. Markdown shows it with
    ``{glue:text}`name:.1f``` (a format spec) or ``{glue:text}`name``` (strings, integers).
    Seconds of wall-clock time carry ``wall_time=True``: they are expected to differ between runs.
    So does any figure that moves with the run rather than with the parameters (a process's RSS,
    a count of rows within a target when the measured peaks themselves vary); the rerun test
    compares every other glued value exactly.
    Nothing is displayed in the cell.
    """
    from IPython.display import display

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"glue name must be a Python identifier such as 'closed_acc', got {name!r}"
        )
    plain = _plain(value, name)
    display(
        {GLUE_PREFIX + "text/plain": repr(plain)},
        raw=True,
        metadata={
            "scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX},
            GLUE_KIND: {"wall_time": bool(wall_time)},
        },
    )
