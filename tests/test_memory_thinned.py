"""fieldnotes.memory.thinned: the committed results as a measurement, and the hosted fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fieldnotes.memory import RunSpec
from fieldnotes.memory.thinned import (
    TIMELINE_FILE,
    committed_measurement,
    measure_or_committed,
    thin_timeline,
)

SPEC = RunSpec(hidden=64, layers=2, heads=2, vocab=300, seq_len=16, micro_batch=3, steps=1)


def _timeline(n=1000):
    rng = np.random.default_rng(0)
    rows = []
    for engine in ("deepspeed-2", "torch-fsdp"):
        for rank in (0, 1):
            total = rng.integers(0, 10**6, n)
            rows.append(
                pd.DataFrame(
                    {
                        "engine": engine,
                        "rank": rank,
                        "seconds": np.arange(n) / n,
                        "phase": "forward",
                        "total": total,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_thin_keeps_each_peak_and_the_shape():
    timeline = _timeline()
    thin = thin_timeline(timeline, SPEC, rows=50)
    for (engine, rank), group in timeline.groupby(["engine", "rank"]):
        kept = thin[(thin.engine == engine) & (thin["rank"] == rank)]
        assert len(kept) <= 50 and kept.total.max() == group.total.max()
        assert kept.seconds.is_monotonic_increasing
    assert (thin.hidden == 64).all() and (thin.micro_batch == 3).all()
    with pytest.raises(ValueError, match="rows"):
        thin_timeline(timeline, SPEC, rows=1)


def test_committed_round_trip_and_missing_files(tmp_path):
    states = pd.DataFrame({"engine": ["deepspeed-2"], "rank": [0], "measured_bytes": [5]})
    with pytest.raises(FileNotFoundError, match="zero_memory.csv"):
        committed_measurement(tmp_path)
    states.to_csv(tmp_path / "zero_memory.csv", index=False)
    thin_timeline(_timeline(), SPEC, rows=20).to_csv(tmp_path / TIMELINE_FILE, index=False)
    measurement, spec = committed_measurement(tmp_path)
    assert spec == SPEC
    assert "hidden" not in measurement.timeline.columns
    assert measurement.states.measured_bytes.tolist() == [5]
    pd.read_csv(tmp_path / TIMELINE_FILE).drop(columns="hidden").to_csv(
        tmp_path / TIMELINE_FILE, index=False
    )
    with pytest.raises(ValueError, match="hidden"):
        committed_measurement(tmp_path)


def test_hosted_machine_falls_back_to_the_committed_results(tmp_path, monkeypatch):
    import fieldnotes.launch

    pd.DataFrame({"rank": [0]}).to_csv(tmp_path / "zero_memory.csv", index=False)
    thin_timeline(_timeline(), SPEC, rows=20).to_csv(tmp_path / TIMELINE_FILE, index=False)
    monkeypatch.setattr(fieldnotes.launch, "cannot_run", lambda feature: "skipped: one core")
    measurement, spec, note = measure_or_committed(RunSpec(), folder=tmp_path)
    assert spec == SPEC and note.startswith("skipped: one core; showing the committed results")
    assert "\n" not in note and len(measurement.timeline) > 0


def test_the_repository_carries_committed_results():
    measurement, spec = committed_measurement()
    assert set(measurement.timeline.engine) == set(measurement.states.engine)
    assert isinstance(spec, RunSpec)


@pytest.mark.slow
def test_the_notebook_runs_end_to_end_where_processes_cannot_start(tmp_path, monkeypatch):
    """The hosted fallback as a reader meets it: the whole chapter at CI size with
    cannot_run("processes") answering no inside the kernel (an IPython startup file patches it),
    every glued name its pages need present."""
    from fieldnotes import prose, runner
    from fieldnotes.book import repo_root

    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-no-processes.py").write_text(
        "import fieldnotes.launch as _launch\n"
        "_real = _launch.cannot_run\n"
        "_launch.cannot_run = lambda f: 'skipped: forced by the test' if f == 'processes' else _real(f)\n"
    )
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    root = repo_root()
    out = tmp_path / "01-memory-hosted.ipynb"
    params = runner.ci_parameters(root)["01-memory"]
    runner.execute(root, "01-memory", out, params, results_dir=tmp_path / "results")
    assert prose.glue_problems(str(out)) == []
    text = out.read_text()
    assert "skipped: forced by the test; showing the committed results" in text
