"""The chapter's benchmark script picks the levers it is asked for, baselines always included."""

import importlib.util
from pathlib import Path

import pytest

from fieldnotes.book import repo_root


def _bench():
    path = Path(repo_root()) / "benchmarks" / "return_trips.py"
    spec = importlib.util.spec_from_file_location("return_trips_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lever_names_keep_the_baselines_and_refuse_unknown_names():
    bench = _bench()
    every = bench.lever_names(None)
    assert len(every) == len(bench.SPARK_LEVERS) + len(bench.DUCK_LEVERS)
    assert len(set(every)) == len(every)  # a name picks one variant
    picked = bench.lever_names("trig once per row")
    assert picked == [bench.SPARK_LEVERS[0][0], "trig once per row", bench.DUCK_LEVERS[0][0]]
    assert bench.lever_names("") == [bench.SPARK_LEVERS[0][0], bench.DUCK_LEVERS[0][0]]
    with pytest.raises(ValueError, match="unknown lever"):
        bench.lever_names("trig once per row;faster please")
