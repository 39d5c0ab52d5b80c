"""Timing helpers: an action is timed and its shuffle measured; the targets table reads a table."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.measure import (
    best_against_best,
    lever_summary,
    median_seconds,
    power_fit,
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


def test_power_fit_recovers_a_known_law():
    ns = [1_000, 3_000, 10_000]
    t = pd.DataFrame({"N": ns, "engine": "naive", "seconds": [2e-7 * n**2 for n in ns]})
    fit = power_fit(pd.concat([t, t.assign(engine="ends", seconds=1.0)]), "naive")
    assert fit.slope == pytest.approx(2.0)
    assert fit.seconds(100_000) == pytest.approx(2e-7 * 1e10)
    assert fit.trips_for(250.0) == pytest.approx(math.sqrt(250.0 / 2e-7))
    assert fit.points == 3 and fit.max_rel_residual == pytest.approx(0.0, abs=1e-9)
    noisy = t.assign(seconds=t["seconds"] * np.array([1.0, 1.2, 1.0]))
    assert power_fit(noisy, "naive").max_rel_residual > 0.05
    with pytest.raises(ValueError, match="a fit needs two"):
        power_fit(t.head(1), "naive")


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


def test_lever_summary_calls_a_lever_faster_only_beyond_the_spread():
    runs = []
    for rnd, (base, close, quick, duck) in enumerate(
        [(10, 9, 5, 2), (12, 13, 6, 3), (11, 14, 4, 2.5)]
    ):
        for lever, engine, secs in [("base", "Spark ends", base), ("close", "Spark ends", close),
                                    ("quick", "Spark ends", quick), ("duck", "DuckDB", duck)]:  # fmt: skip
            runs.append({"N": 1000, "round": rnd, "lever": lever, "engine": engine,
                         "seconds": float(secs), "load_average": 1.0, "pairs": 7,
                         "shuffle_bytes": 1.0, "join": "SortMergeJoin"})  # fmt: skip
    s = lever_summary(pd.DataFrame(runs)).set_index("lever")
    assert s.loc["base", "seconds"] == 11.0 and s.loc["base", "runs"] == 3
    assert s.loc["quick", "vs baseline"] == pytest.approx(5 / 11)
    assert s["verdict"].to_dict() == {"base": "baseline", "close": "within the spread",
                                      "quick": "faster", "duck": "baseline"}  # fmt: skip
    best = best_against_best(lever_summary(pd.DataFrame(runs))).set_index("engine")
    assert best.loc["ends", "lever"] == "quick" and best.loc["duckdb", "seconds"] == 2.5
    assert speed_targets(best.reset_index(), ((1000, 2.0),)).loc[0, "ends / DuckDB"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="lack columns"):
        lever_summary(pd.DataFrame(runs).drop(columns="load_average"))
