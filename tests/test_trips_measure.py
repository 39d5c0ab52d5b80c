"""Timing helpers: an action is timed and its shuffle measured; the targets table reads a table."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.measure import (
    benchmark_targets,
    median_seconds,
    repo_benchmark_dir,
    speed_targets,
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


def test_speed_targets_are_measured_not_assumed():
    rows = [
        {"N": 1_000_000, "engine": "ends", "seconds": 3.0},
        {"N": 1_000_000, "engine": "duckdb", "seconds": 2.0},
        {"N": 10_000_000, "engine": "ends", "seconds": 80.0},
        {"N": 10_000_000, "engine": "duckdb", "seconds": 50.0},
    ]
    t = speed_targets(pd.DataFrame(rows)).set_index("N")
    assert t.loc[1_000_000, "ends / DuckDB"] == pytest.approx(1.5)
    assert t.loc[1_000_000, "verdict"] == "met"
    assert t.loc[10_000_000, "verdict"] == "not met"  # 1.6 > 1.5
    t = speed_targets(pd.DataFrame(rows[:3])).set_index("N")
    assert t.loc[10_000_000, "verdict"] == "not measured"
    with pytest.raises(ValueError, match="seconds"):
        speed_targets(pd.DataFrame(rows).drop(columns="seconds"))


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


def test_laziness_builds_without_jobs_and_counts_with_them():
    from fieldnotes.trips.measure import laziness
    from fieldnotes.trips.planted import planted_trips
    from fieldnotes.trips.session import to_spark

    spark = spark_session()
    trips, _ = planted_trips(40, 90.0, seed=3)
    full = to_spark(spark, trips).cache()
    sample = to_spark(spark, trips.head(10)).cache()
    full.count(), sample.count()
    lz = laziness(sample, full, 90.0, repeats=1, settle_s=0.5)
    assert (lz.n_sample, lz.n_full) == (10, 80)
    assert lz.build_jobs == 0 and lz.count_jobs >= 1
    assert lz.pairs >= 1 and lz.count_s > 0
    t = lz.table()
    assert t["Spark jobs run"].tolist()[:2] == [0, 0] and len(t) == 4


def test_join_plan_names_the_operator_and_where_the_exact_test_sits():
    from fieldnotes.trips.join import return_trips
    from fieldnotes.trips.measure import join_plan
    from fieldnotes.trips.planted import planted_trips
    from fieldnotes.trips.session import to_spark

    spark = spark_session()
    df = to_spark(spark, planted_trips(20, 90.0, seed=4)[0])
    op, in_join = join_plan(return_trips(df, 90.0, method="grid"))
    assert op in {"BroadcastHashJoin", "SortMergeJoin", "ShuffledHashJoin"} and in_join
    op, in_join = join_plan(df.alias("a").crossJoin(df.alias("b")))
    assert op in {"BroadcastNestedLoopJoin", "CartesianProduct"} and not in_join
    with pytest.raises(ValueError, match="no join operator"):
        join_plan(df)
