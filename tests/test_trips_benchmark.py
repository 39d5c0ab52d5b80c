"""The chapter's benchmark script picks the levers it is asked for, baselines always included."""

import importlib.util
import sys
from pathlib import Path

import pytest

from fieldnotes.book import repo_root


def _bench():
    path = Path(repo_root()) / "benchmarks" / "return_trips.py"
    spec = importlib.util.spec_from_file_location("return_trips_bench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


def test_lever_names_keep_the_baselines_and_refuse_unknown_names():
    bench = _bench()
    every = bench.lever_names(None)
    assert len(every) == len(bench.SPARK_LEVERS) + len(bench.DUCK_PLANS)
    assert len(set(every)) == len(every)  # a name picks one variant
    spark0, duck0 = bench.SPARK_LEVERS[0].name, bench.duck_lever_name(bench.DUCK_PLANS[0])
    assert bench.lever_names("trig once per row") == [spark0, "trig once per row", duck0]
    assert bench.lever_names("") == [spark0, duck0]
    with pytest.raises(ValueError, match="unknown lever"):
        bench.lever_names("trig once per row;faster please")


def test_levers_say_what_each_run_changes():
    import inspect

    from fieldnotes.trips import timed_duckdb
    from fieldnotes.trips.join import JoinOptions

    bench = _bench()
    defaults = {
        k: p.default for k, p in inspect.signature(timed_duckdb).parameters.items() if k in
        ("trig", "time_in_key")
    }  # fmt: skip
    assert bench.DUCK_PLANS[0] == defaults  # DuckDB's baseline is its default plan
    names = {bench.duck_lever_name(p): p for p in bench.DUCK_PLANS}
    assert names["DuckDB: trig once per row, 8-hour bucket in the key"] == {
        "trig": "row", "time_in_key": True}  # fmt: skip
    assert names["DuckDB: trig per candidate, cells only in the key, 8-hour band in the join "
                 "condition"] == {"trig": "candidate", "time_in_key": False}  # fmt: skip
    spark = {v.name: v for v in bench.SPARK_LEVERS}
    assert spark["Spark default plan (trig per candidate)"].options == JoinOptions()
    assert spark["trig once per row"].options == JoinOptions(trig="row")
    assert spark["side b broadcast"].options == JoinOptions(broadcast_b=True)
    partitions = {
        name: v.settings(cores=2).get("spark.sql.shuffle.partitions")
        for name, v in spark.items() if "per core" in name
    }  # fmt: skip
    assert partitions == {"1 shuffle partition per core": "2",
                          "8 shuffle partitions per core": "16",
                          "32 shuffle partitions per core": "64"}  # fmt: skip
    assert spark["AQE off"].settings(2) == {"spark.sql.adaptive.enabled": "false"}


def test_machine_notes_say_where_and_how_the_benchmark_ran(monkeypatch):
    bench = _bench()
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    info = bench.machine(argv=["--sizes", "3000,5000"])
    assert info["spark_master"] == "local[*]" and info["spark_mode"].startswith("local")
    assert info["command"] == "benchmarks/return_trips.py --sizes 3000,5000"
    assert bench.machine("spark://10.0.0.5:7077", argv=[])["spark_mode"] == "cluster"


def test_results_replace_the_committed_table_only_when_complete(tmp_path, monkeypatch):
    import pandas as pd

    bench = _bench()
    monkeypatch.setattr(bench, "plot_times", lambda *a, **k: None)
    (tmp_path / "t.csv").write_text("old,complete\n1,2\n")
    bench.partial_path(tmp_path, "t").write_text("N\n3000\n")  # a sweep's rows so far
    assert (tmp_path / "t.csv").read_text() == "old,complete\n1,2\n"
    df = pd.DataFrame({"N": [3000], "engine": ["ends"], "seconds": [1.5], "runs": [3]})
    info = {"cores": 2, "cpu": "x", "load_average_at_start": 0.5}
    bench.write_outputs(df, 90.0, info, tmp_path, "t")
    assert pd.read_csv(tmp_path / "t.csv").equals(df)
    assert not bench.partial_path(tmp_path, "t").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md", "t_machine.json"]
