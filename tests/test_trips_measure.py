"""Timing helpers: an action is timed and its shuffle measured; the targets table reads a table."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.measure import (
    benchmark_targets,
    median_seconds,
    repo_benchmark_dir,
    timed_count,
)
from fieldnotes.trips.session import spark_session


def test_timed_count_runs_the_action_and_sees_the_shuffle():
    spark = spark_session()
    df = spark.range(0, 20_000, numPartitions=4).selectExpr("id % 97 AS k").groupBy("k").count()
    run = timed_count(df)
    assert run.rows == 97
    assert run.seconds > 0
    assert run.shuffle_bytes > 0  # the groupBy exchanged partial counts between stages


def test_median_seconds():
    calls = []
    secs, res = median_seconds(lambda: calls.append(1) or len(calls), 3)
    assert res == 3 and len(calls) == 3 and secs >= 0
    with pytest.raises(ValueError, match="repeats"):
        median_seconds(lambda: None, 0)


def test_benchmark_targets_reads_the_table():
    rows = []
    for eng, secs, cand in [("grid", 40.0, 5e8), ("ends", 10.0, 2e6), ("duckdb", 4.0, np.nan)]:
        rows.append({"N": 1_000_000, "engine": eng, "seconds": secs, "candidates": cand})
    rows.append({"N": 10_000_000, "engine": "ends", "seconds": 150.0, "candidates": np.nan})
    t = benchmark_targets(pd.DataFrame(rows)).set_index("target")["measured"]
    assert t["best Spark method at N=1M"] == "ends"
    assert t["best Spark / DuckDB time at N=1M"] == pytest.approx(2.5)
    assert t["best Spark time at N=10M (s)"] == 150.0
    assert t["cross-join / best candidates at N=1M"] == pytest.approx(1e12 / 2e6)
    assert t["cross-join / post's grid candidates at N=1M"] == pytest.approx(2000)
    empty = benchmark_targets(pd.DataFrame(rows[:1])).set_index("target")["measured"]
    assert math.isnan(empty["best Spark time at N=10M (s)"])


def test_repo_benchmark_dir():
    assert repo_benchmark_dir().parts[-2:] == ("benchmarks", "results")


def test_spark_jobs_started_counts_actions_only():
    from fieldnotes.trips.measure import spark_jobs_started

    spark = spark_session()
    df = spark.range(1000).selectExpr("id * 2 AS x")
    before = spark_jobs_started(spark)
    lazy = df.where("x > 10").groupBy().count()  # a transformation: no job
    assert spark_jobs_started(spark) == before
    assert lazy.collect()[0][0] == 994
    import time

    for _ in range(50):
        if spark_jobs_started(spark) > before:
            break
        time.sleep(0.05)
    assert spark_jobs_started(spark) > before
