"""The committed sharded-run results (``benchmarks/results/zero_memory.*``) as a measurement.

Where the chapter cannot start its CPU training processes (a hosted notebook with one core or
little memory: :func:`fieldnotes.launch.cannot_run`), it reads what ``benchmarks/zero_memory.py``
measured instead: the model-state rows (``zero_memory.csv``) and the traced step's timeline,
thinned to a few hundred rows per engine and rank with each one's peak row kept
(``zero_memory.timeline.csv``), together with the shape they were measured at.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

STATES_FILE = "zero_memory.csv"
TIMELINE_FILE = "zero_memory.timeline.csv"


def thin_timeline(timeline, spec, *, rows: int = 400):
    """At most ``rows`` evenly spaced rows of each engine and rank's timeline, its peak row always
    among them, with ``spec``'s fields as columns."""
    import numpy as np
    import pandas as pd

    if rows < 2:
        raise ValueError(f"rows must be >= 2, got {rows!r}")
    kept = []
    for _, group in timeline.groupby(["engine", "rank"], sort=False):
        positions = set(np.linspace(0, len(group) - 1, min(rows - 1, len(group))).astype(int))
        positions.add(int(np.argmax(group["total"].to_numpy())))
        kept.append(group.iloc[sorted(positions)])
    out = pd.concat(kept, ignore_index=True)
    for name, value in asdict(spec).items():
        out[name] = value
    return out


def committed_measurement(folder=None):
    """(Measurement, RunSpec) of the committed results in ``folder`` (default: the repository's
    ``benchmarks/results``); a ``FileNotFoundError`` names a missing file."""
    import pandas as pd

    from fieldnotes.book import repo_root
    from fieldnotes.memory.measure import Measurement
    from fieldnotes.memory.runs import RunSpec

    if folder is None:
        root = repo_root()
        if root is None:
            raise FileNotFoundError("no repository found: pass the results folder")
        folder = root / "benchmarks" / "results"
    folder = Path(folder)
    for name in (STATES_FILE, TIMELINE_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} is missing: run benchmarks/zero_memory.py")
    states = pd.read_csv(folder / STATES_FILE)
    timeline = pd.read_csv(folder / TIMELINE_FILE)
    names = [f.name for f in fields(RunSpec)]
    missing = [n for n in names if n not in timeline.columns]
    if missing:
        raise ValueError(f"{folder / TIMELINE_FILE} lacks the shape column(s) {missing}")
    first = timeline.iloc[0]
    spec = RunSpec(**{n: first[n].item() if hasattr(first[n], "item") else first[n] for n in names})
    return Measurement(states, timeline.drop(columns=names)), spec


def measure_or_committed(spec, *, folder=None, **measure_kwargs):
    """(Measurement, RunSpec, note): :func:`~fieldnotes.memory.measure_zero`'s run of ``spec``, or,
    where :func:`fieldnotes.launch.cannot_run` says this machine cannot start the training
    processes, the committed results and their shape, with a one-line note saying so (None when
    measured here)."""
    from fieldnotes.launch import cannot_run
    from fieldnotes.memory.measure import measure_zero

    why = cannot_run("processes")
    if why is None:
        return measure_zero(spec, **measure_kwargs), spec, None
    measurement, committed = committed_measurement(folder)
    note = (
        f"{why}; showing the committed results of benchmarks/zero_memory.py instead "
        f"(hidden {committed.hidden}, {committed.layers} layers, vocabulary {committed.vocab}, "
        f"micro-batch {committed.micro_batch})"
    )
    return measurement, committed, note


__all__ = [
    "STATES_FILE",
    "TIMELINE_FILE",
    "committed_measurement",
    "measure_or_committed",
    "thin_timeline",
]
