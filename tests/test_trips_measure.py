"""Timing helpers: a query is timed on the prepared cache alone and its shuffle measured; the
targets table reads a table."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips import FEB2016_TRIPS
from fieldnotes.trips.measure import (
    best_against_best,
    check_reads_prepared,
    fit_residuals,
    fixed_overhead_s,
    lever_summary,
    load_prepared,
    measured_at,
    median_seconds,
    post_claims,
    power_fit,
    repo_benchmark_dir,
    speed_targets,
    timed_action,
    timed_count,
)
from fieldnotes.trips.session import spark_session


def _planted_spark(seed: int):
    """(pandas frame, Spark frame) of planted trips around boundary pairs at 90 m."""
    from fieldnotes.trips.planted import planted_trips
    from fieldnotes.trips.session import to_spark

    trips, _ = planted_trips(30, 90.0, seed=seed)
    return trips, to_spark(spark_session(), trips)


def test_timed_count_times_the_query_on_the_prepared_cache_and_sees_the_shuffle():
    from fieldnotes.trips.join import return_trips
    from fieldnotes.trips.oracle import return_trips_exact

    trips, sdf = _planted_spark(seed=5)
    load = load_prepared(sdf)
    assert load.rows == len(trips) and load.seconds > 0
    rec = timed_action(return_trips(load.prepared, 90.0, method="ends"), load.prepared, 2)
    assert rec["pairs"] == len(return_trips_exact(trips, 90.0)) > 0
    assert 0 < rec["seconds_min"] <= rec["seconds"] <= rec["seconds_max"]
    assert rec["shuffle_bytes"] > 0  # the count's partial sums were exchanged between stages
    assert rec["join"] in {"BroadcastHashJoin", "SortMergeJoin", "ShuffledHashJoin"}
    load.prepared.df.unpersist()


def test_the_timer_refuses_a_plan_that_does_not_read_the_prepared_cache():
    from fieldnotes.trips.join import prepare_trips, return_trips

    _, sdf = _planted_spark(seed=6)
    _, other = _planted_spark(seed=7)
    prepared = prepare_trips(sdf)
    with pytest.raises(ValueError, match="not cached"):
        check_reads_prepared(return_trips(prepared, 90.0, method="ends"), prepared)
    prepared.df.cache()  # marked, but no action has filled it yet
    with pytest.raises(ValueError, match="not yet filled"):
        timed_count(return_trips(prepared, 90.0, method="ends"), prepared)
    prepared.df.count()
    check_reads_prepared(return_trips(prepared, 90.0, method="naive"), prepared)  # both sides
    with pytest.raises(ValueError, match="besides the prepared trips' cache"):
        timed_count(return_trips(other, 90.0, method="ends"), prepared)  # the load again
    mixed = return_trips(prepared, 90.0, method="ends").union(
        return_trips(other, 90.0, method="ends")
    )
    with pytest.raises(ValueError, match="besides the prepared trips' cache"):
        timed_action(mixed, prepared, 1)
    with pytest.raises(ValueError, match="repeats"):
        timed_action(return_trips(prepared, 90.0, method="ends"), prepared, 0)
    prepared.df.unpersist()


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
    assert fit.sizes == tuple(ns)
    # a floor of seconds leaves out the small sizes (a flat fixed cost would bend the slope)
    ns4 = [*ns, 30_000]
    t4 = pd.DataFrame({"N": ns4, "engine": "naive", "seconds": [2e-7 * n**2 for n in ns4]})
    flat = t4.assign(seconds=np.maximum(t4["seconds"], 1.0))  # 0.2 s measured as 1 s
    assert power_fit(flat, "naive").slope < 1.9
    assert power_fit(flat, "naive", min_seconds=1.5).slope == pytest.approx(2.0)
    # fewer than two sizes clear the floor: the two largest are fitted
    assert power_fit(flat, "naive", min_seconds=100.0).sizes == (10_000, 30_000)


def _law_table(overhead=1.0):
    """naive = 1e-6 N^2 s, ends = 1e-4 N s from 1,000 to 1,000,000 trips, each plus a fixed
    ``overhead`` (naive up to 30,000 trips, as a benchmark stops it)."""
    ns = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
    naive = [{"N": n, "engine": "naive", "seconds": overhead + 1e-6 * n**2} for n in ns[:4]]
    ends = [{"N": n, "engine": "ends", "seconds": overhead + 1e-4 * n} for n in ns]
    return pd.DataFrame(naive + ends)


def test_post_claims_fit_only_beyond_the_fixed_overhead():
    bench = _law_table()
    claims = post_claims(bench, overhead_multiple=6.0)
    assert claims["ends_floor_s"] == pytest.approx(6 * 1.1)  # ends at 1,000 trips: the overhead
    assert claims["ends_min_n"] == 100_000 and claims["ends_points"] == 3
    assert claims["ends_slope"] == pytest.approx(1.0, abs=0.06)
    assert claims["naive_floor_s"] == pytest.approx(6 * 2.0)
    assert claims["naive_min_n"] == 10_000 and claims["naive_slope"] == pytest.approx(2.0, abs=0.1)
    # speed-up 1e-6 N^2 / 1e-4 N = N / 100 reaches 4,500 at about 450,000 trips
    assert claims["factor_n"] == pytest.approx(450_000, rel=0.3)
    assert claims["factor_share_of_month"] == pytest.approx(claims["factor_n"] / FEB2016_TRIPS)
    assert claims["speedup_n"] == 30_000
    # 250 s of cross join is sqrt(250 / 1e-6) trips; ends measured there, overhead included
    assert claims["post_n"] == pytest.approx(math.sqrt(250 / 1e-6), rel=0.1)
    assert claims["ends_at_post_n"] == pytest.approx(1.0 + 1e-4 * claims["post_n"], rel=0.1)
    with pytest.raises(ValueError, match="outside 'ends'"):
        measured_at(bench, "ends", 2e6)
    # fitted on every size, the overhead flattens the ends slope far below its true 1
    assert post_claims(bench, overhead_multiple=0.0)["ends_slope"] < 0.8


def test_fit_residuals_show_every_row_and_which_were_used():
    bench = _law_table()
    fit = power_fit(bench, "ends", min_seconds=5.5)
    res = fit_residuals(bench, "ends", fit)
    assert list(res.columns) == ["engine", "N", "measured (s)", "fitted (s)", "residual",
                                 "used in fit"]  # fmt: skip
    assert res["used in fit"].sum() == 3 and len(res) == 7
    assert res.loc[res["used in fit"], "residual"].abs().max() < 0.2
    assert res.loc[~res["used in fit"], "residual"].iloc[0] > 1  # the overhead at 1,000 trips
    with pytest.raises(ValueError, match="no rows of engine 'ends'"):
        fixed_overhead_s(bench.assign(engine="duckdb"), "ends")


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
    assert "load_seconds" not in s  # the engines' loads only where the runs recorded them
    loaded = lever_summary(pd.DataFrame(runs).assign(load_seconds=[1.0, 2.0, 3.0, 4.0] * 3))
    assert loaded.set_index("lever")["load_seconds"].to_dict() == {
        "base": 1.0, "close": 2.0, "quick": 3.0, "duck": 4.0}  # fmt: skip
    with pytest.raises(ValueError, match="lack columns"):
        lever_summary(pd.DataFrame(runs).drop(columns="load_average"))


def test_benchmark_days_and_the_density_each_size_really_has():
    from fieldnotes.trips.measure import benchmark_days, density_share
    from fieldnotes.trips.synthetic import FEB2016_TRIPS

    daily = FEB2016_TRIPS / 29
    assert benchmark_days(3_000) == 1 and benchmark_days(100_000) == 1
    assert benchmark_days(1_000_000) == round(1_000_000 / daily)
    assert density_share(3_000, 1) == pytest.approx(3_000 / daily)  # 0.8 %, not February's
    assert density_share(1_000_000, benchmark_days(1_000_000)) == pytest.approx(1.0, rel=0.2)
    with pytest.raises(ValueError, match="n must be"):
        benchmark_days(0)
    with pytest.raises(ValueError, match="days must be"):
        density_share(10, 0)
