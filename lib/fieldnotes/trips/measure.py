"""Honest Spark timing: wall time of an action, and the shuffle bytes the action wrote."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from fieldnotes.trips.synthetic import FEB2016_TRIPS


@dataclass(frozen=True)
class SparkRun:
    """One timed action: seconds of wall time, rows it returned, shuffle bytes written, and the
    join operator that ran (from the final plan Spark executed; None if it had no join)."""

    seconds: float
    rows: int
    shuffle_bytes: int
    join: str | None = None


JOIN_OPERATORS = (
    "BroadcastHashJoin",
    "SortMergeJoin",
    "ShuffledHashJoin",
    "BroadcastNestedLoopJoin",
    "CartesianProduct",
)


def _sql_runs(spark) -> list[dict]:
    """The SQL executions Spark's REST API lists for this application, with their plan nodes."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = (f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/sql"
           "?details=true&planDescription=false&length=1000000")  # fmt: skip
    with urllib.request.urlopen(url, timeout=30) as resp:  # the driver's own UI, on this machine
        return json.load(resp)


def _executed_join(runs: list[dict], after: int) -> str | None:
    """The join operator of the last completed SQL execution with an id above ``after`` (the
    final plan, after adaptive execution re-planned it), None if none has completed yet."""
    done = [r for r in runs if r["id"] > after and r["status"] == "COMPLETED"]
    if not done:
        return None
    nodes = max(done, key=lambda r: r["id"])["nodes"]
    return next((n["nodeName"] for n in nodes if n["nodeName"] in JOIN_OPERATORS), "")


def _stage_shuffle_bytes(spark) -> dict[tuple[int, int], int]:
    """Shuffle bytes written per completed stage ((id, attempt) -> bytes), from Spark's REST API."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?status=complete"
    with urllib.request.urlopen(url, timeout=30) as resp:  # the driver's own UI, on this machine
        stages = json.load(resp)
    return {(s["stageId"], s["attemptId"]): int(s.get("shuffleWriteBytes", 0)) for s in stages}


def _plan_leaves(df) -> list:
    """The leaves of ``df``'s optimized logical plan (JVM objects), cached tables substituted."""
    leaves = df._jdf.queryExecution().optimizedPlan().collectLeaves()
    return [leaves.apply(i) for i in range(leaves.length())]


def check_reads_prepared(df, prepared) -> None:
    """Raise ValueError unless ``prepared`` (``join.PreparedTrips``) is cached and filled, and
    every table ``df``'s plan reads is that cached table, so that timing an action of ``df``
    times the query alone and never the load (reading files, the usable-trip rules, caching).
    """
    spark = df.sparkSession
    cached = spark._jsparkSession.sharedState().cacheManager().lookupCachedData(prepared.df._jdf)
    if not cached.isDefined():
        raise ValueError(
            "the prepared trips are not cached: run load_prepared(trips) (or "
            "prepared.df.cache().count()) before timing a query on them"
        )
    builder = cached.get().cachedRepresentation().cacheBuilder()
    if not builder.isCachedColumnBuffersLoaded():
        raise ValueError(
            "the prepared trips are marked for caching but not yet filled: run an action on "
            "them (prepared.df.count()) first, or the first timed run includes the load"
        )
    other = [
        leaf.nodeName()
        for leaf in _plan_leaves(df)
        if leaf.nodeName() != "InMemoryRelation" or not leaf.cacheBuilder().equals(builder)
    ]
    if other:
        raise ValueError(
            f"the plan reads {', '.join(sorted(set(other)))} besides the prepared trips' cache: "
            "timing it would time the load too; build the query from the cached PreparedTrips"
        )


@dataclass(frozen=True)
class PreparedLoad:
    """The usable trips prepared and cached (``prepared``, a ``join.PreparedTrips``), the rows
    cached and the wall time of that load in seconds (read the input, apply the usable-trip
    rules, compute times and trigonometry, fill the cache), timed apart from any query."""

    prepared: object
    rows: int
    seconds: float


def load_prepared(trips) -> PreparedLoad:
    """Prepare ``trips`` (a Spark DataFrame of normalized trips, or a ``TLCLoad``), cache the
    result and fill the cache with one ``count()``, timed (``PreparedLoad``)."""
    from fieldnotes.trips.join import prepare_trips

    t0 = time.perf_counter()
    prepared = prepare_trips(trips)
    rows = prepared.df.cache().count()
    return PreparedLoad(prepared=prepared, rows=int(rows), seconds=time.perf_counter() - t0)


def timed_count(df, prepared) -> SparkRun:
    """Run ``df.count()`` (an action, so the whole plan executes); time it and sum its shuffles.

    ``df`` must read only the cached ``prepared`` trips (``check_reads_prepared``, else
    ValueError), so the time is the query's alone.
    """
    check_reads_prepared(df, prepared)
    spark = df.sparkSession
    before = _stage_shuffle_bytes(spark)
    last_sql = max((r["id"] for r in _sql_runs(spark)), default=-1)
    t0 = time.perf_counter()
    rows = df.count()
    seconds = time.perf_counter() - t0
    for _ in range(100):  # the listener bus is asynchronous: wait until the run is recorded
        after = _stage_shuffle_bytes(spark)
        join = _executed_join(_sql_runs(spark), last_sql)
        if len(after) > len(before) and join is not None:
            break
        time.sleep(0.05)
    shuffled = sum(v for k, v in after.items() if k not in before)
    return SparkRun(seconds=seconds, rows=int(rows), shuffle_bytes=int(shuffled), join=join or None)


def timed_action(df, prepared, repeats: int) -> dict:
    """``repeats`` timed counts (``timed_count``) of the query ``df`` over the cached
    ``prepared`` trips: median, fastest and slowest seconds, rows, the last count's shuffle
    bytes and the join operator the last count ran (from the final plan: with adaptive
    execution Spark may re-plan once it sees the cached table's real size, so the operator in
    ``df``'s plan before it runs, ``join_plan``, can differ)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    runs = [timed_count(df, prepared) for _ in range(repeats)]
    secs = sorted(run.seconds for run in runs)
    return {
        "seconds": statistics.median(secs),
        "seconds_min": secs[0],
        "seconds_max": secs[-1],
        "pairs": runs[-1].rows,
        "shuffle_bytes": runs[-1].shuffle_bytes,
        "join": runs[-1].join,
    }


def median_seconds(fn, repeats: int = 3) -> tuple[float, object]:
    """Median wall time (s) of ``repeats`` calls of ``fn()`` and the last call's result."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def repo_benchmark_dir():
    """``benchmarks/results`` of the repository this package is installed from (a Path)."""
    from pathlib import Path

    from fieldnotes.book import repo_root

    return (repo_root() or Path.cwd()) / "benchmarks" / "results"


@dataclass(frozen=True)
class PowerFit:
    """A least-squares line through log(seconds) against log(trips): seconds = c * N ** slope,
    fitted to the sizes ``sizes`` (trips)."""

    slope: float
    c: float
    points: int
    max_rel_residual: float
    sizes: tuple[int, ...]

    def seconds(self, n: float) -> float:
        """Predicted seconds at n trips."""
        return self.c * float(n) ** self.slope

    def trips_for(self, seconds: float) -> float:
        """Trips n the fit predicts to take ``seconds``."""
        return (float(seconds) / self.c) ** (1.0 / self.slope)


def power_fit(table, engine: str, *, min_seconds: float = 0.0) -> PowerFit:
    """Fit seconds = c * N ** slope to ``engine``'s rows of a benchmark table (pandas, columns
    N, engine, seconds, one row per size) that took at least ``min_seconds``, or to its two
    largest sizes when fewer than two took that long; ``max_rel_residual`` is the largest
    |measured / fitted - 1| over the points used."""
    import numpy as np

    rows = table[table["engine"] == engine].sort_values("N")
    if rows["N"].nunique() < 2:
        raise ValueError(f"engine {engine!r} has {rows['N'].nunique()} size(s); a fit needs two")
    above = rows[rows["seconds"] >= min_seconds]
    rows = above if above["N"].nunique() >= 2 else rows.tail(2)
    x, y = np.log(rows["N"].to_numpy(float)), np.log(rows["seconds"].to_numpy(float))
    slope, intercept = np.polyfit(x, y, 1)
    fitted = np.exp(intercept + slope * x)
    resid = float(np.max(np.abs(np.exp(y) / fitted - 1)))
    sizes = tuple(int(n) for n in sorted(rows["N"].unique()))
    return PowerFit(float(slope), float(np.exp(intercept)), len(rows), resid, sizes)


def fit_residuals(table, engine: str, fit: PowerFit):
    """Every row of ``engine`` in a benchmark table beside ``fit``'s prediction (pandas: engine,
    N, measured (s), fitted (s), residual = measured / fitted - 1, and whether the fit used it)."""
    import pandas as pd

    rows = table[table["engine"] == engine]
    fitted = [fit.seconds(n) for n in rows["N"]]
    return pd.DataFrame(
        {
            "engine": engine,
            "N": rows["N"].to_numpy(),
            "measured (s)": rows["seconds"].to_numpy(),
            "fitted (s)": fitted,
            "residual": rows["seconds"].to_numpy() / fitted - 1,
            "used in fit": rows["N"].isin(fit.sizes).to_numpy(),
        }
    )


def measured_at(table, engine: str, n: float) -> float:
    """``engine``'s seconds at ``n`` trips read off a benchmark table (pandas: N, engine,
    seconds) by straight-line interpolation between the measured sizes on log-log axes; ``n``
    must lie within the sizes measured (no extrapolation)."""
    import numpy as np

    rows = table[table["engine"] == engine].sort_values("N")
    if rows.empty or not rows["N"].min() <= n <= rows["N"].max():
        have = f"{rows['N'].min():,} to {rows['N'].max():,}" if len(rows) else "none"
        raise ValueError(f"n = {n:,.0f} trips is outside {engine!r}'s measured sizes ({have})")
    x, y = np.log(rows["N"].to_numpy(float)), np.log(rows["seconds"].to_numpy(float))
    return float(np.exp(np.interp(np.log(n), x, y)))


def fixed_overhead_s(table, engine: str) -> float:
    """``engine``'s fastest time in a benchmark table (pandas: engine, seconds), seconds: at its
    smallest size it has almost nothing to compare, so this is mostly the fixed cost of a job
    (scheduling, stages), which a fit must not read as growth with N."""
    rows = table[table["engine"] == engine]
    if rows.empty:
        raise ValueError(f"benchmark table has no rows of engine {engine!r}")
    return float(rows["seconds"].min())


def lever_summary(runs):
    """Per lever of a ``--levers`` run (pandas, one row per run: N, engine, lever, seconds,
    load_average, shuffle_bytes, join, pairs, and ``load_seconds`` where the run has it):
    median, fastest and slowest seconds, runs, the median load average (and median seconds of
    the engine's load), the median relative to the engine's first lever (the baseline), and a
    verdict: ``faster`` / ``slower`` only when every run of the lever beat / lost to every run
    of the baseline, ``within the spread`` otherwise."""
    missing = {"N", "engine", "lever", "seconds", "load_average"} - set(runs.columns)
    if missing:
        raise ValueError(f"lever runs lack columns {sorted(missing)}")
    out = (
        runs.groupby(["N", "engine", "lever"], sort=False)
        .agg(
            seconds=("seconds", "median"),
            seconds_min=("seconds", "min"),
            seconds_max=("seconds", "max"),
            runs=("seconds", "size"),
            load_average=("load_average", "median"),
            pairs=("pairs", "first"),
            shuffle_bytes=("shuffle_bytes", "median"),
            join=("join", "first"),
            **({"load_seconds": ("load_seconds", "median")} if "load_seconds" in runs else {}),
        )
        .reset_index()
    )
    group = out.groupby(["N", "engine"], sort=False)
    out["vs baseline"] = out["seconds"] / group["seconds"].transform("first")
    base_min, base_max = (
        group["seconds_min"].transform("first"),
        group["seconds_max"].transform("first"),
    )
    out["verdict"] = "within the spread"
    out.loc[out["seconds_max"] < base_min, "verdict"] = "faster"
    out.loc[out["seconds_min"] > base_max, "verdict"] = "slower"
    out.loc[group.cumcount() == 0, "verdict"] = "baseline"
    return out


def best_against_best(summary):
    """The fastest lever of each engine at each N of a ``lever_summary`` (pandas: N, engine as
    ``speed_targets`` names them, ``ends`` for Spark and ``duckdb``, seconds, lever)."""
    names = {"Spark ends": "ends", "DuckDB": "duckdb"}
    rows = summary[summary["engine"].isin(names)]
    if rows.empty:
        raise ValueError(f"lever summary has no rows of engines {sorted(names)}")
    best = rows.loc[rows.groupby(["N", "engine"])["seconds"].idxmin()]
    return best.assign(engine=best["engine"].map(names))[["N", "engine", "seconds", "lever"]]


def post_claims(
    bench,
    *,
    post_seconds: float = 250.0,
    post_factor: float = 4_500.0,
    month_trips: int = FEB2016_TRIPS,
    overhead_multiple: float = 2.0,
) -> dict:
    """The post's cross-join time and speed-up checked against a benchmark table (pandas: N,
    engine, seconds with ``naive`` and ``ends``). Each engine is fitted (``power_fit``) only on
    the sizes that took at least ``overhead_multiple`` times its ``fixed_overhead_s`` (that floor
    in seconds is returned; its two largest sizes when fewer clear it), so the fixed cost of a Spark job does not flatten the slope.
    Returns the fits' slopes, points, residuals and smallest size used, the trips a ``post_seconds`` cross join covers here (``post_n``),
    the month's cross join in days, the ``ends`` time measured at ``post_n`` (``measured_at``,
    fixed cost included), the speed-ups there and, both fits extrapolated, at ``month_trips``, the trips at which the fitted speed-up reaches ``post_factor``
    (``factor_n``, infinite when ``ends`` grows as fast as the cross join) and the speed-up
    measured at the largest size where both ran. Keys name the chapter's glued values."""
    floor = {e: overhead_multiple * fixed_overhead_s(bench, e) for e in ("naive", "ends")}
    fit = power_fit(bench, "naive", min_seconds=floor["naive"])
    ends = power_fit(bench, "ends", min_seconds=floor["ends"])
    post_n = fit.trips_for(post_seconds)
    wide = bench.pivot(index="N", columns="engine", values="seconds")
    both = (wide["naive"] / wide["ends"]).dropna()
    if both.empty:
        raise ValueError("no size N has both a naive and an ends time")
    gap = fit.slope - ends.slope
    factor_n = (post_factor * ends.c / fit.c) ** (1 / gap) if gap > 0 else float("inf")
    return {
        "overhead_multiple": overhead_multiple,
        "naive_floor_s": floor["naive"],
        "ends_floor_s": floor["ends"],
        "naive_slope": fit.slope,
        "naive_points": fit.points,
        "naive_resid": fit.max_rel_residual,
        "naive_min_n": fit.sizes[0],
        "ends_slope": ends.slope,
        "ends_points": ends.points,
        "ends_resid": ends.max_rel_residual,
        "ends_min_n": ends.sizes[0],
        "post_n": post_n,
        "naive_month_days": fit.seconds(month_trips) / 86_400,
        "ends_at_post_n": measured_at(bench, "ends", post_n),
        "speedup_post_n": post_seconds / measured_at(bench, "ends", post_n),
        "speedup_month": fit.seconds(month_trips) / ends.seconds(month_trips),
        "factor_n": factor_n,
        "factor_share_of_month": factor_n / month_trips,
        "speedup_n": int(both.index.max()),
        "speedup_measured": float(both.loc[both.index.max()]),
    }


SPEED_TARGETS = ((1_000_000, 2.0), (10_000_000, 1.5))
"""The book's speed targets: (trips N, largest Spark ``ends`` / DuckDB time ratio)."""


def speed_targets(table, targets=SPEED_TARGETS):
    """Spark ``ends`` against DuckDB at each target size of a benchmark table (pandas, columns
    N, engine, seconds): both medians (s), their ratio, the target and whether it was met
    ("met", "not met", or "not measured" when either time is missing)."""
    import pandas as pd

    for col in ("N", "engine", "seconds"):
        if col not in table.columns:
            raise ValueError(f"benchmark table has no column {col!r}")
    t = table.set_index(["N", "engine"])["seconds"]
    rows = []
    for n, limit in targets:
        ends, duck = (float(t.get((n, e), float("nan"))) for e in ("ends", "duckdb"))
        ratio = ends / duck
        verdict = "not measured" if ratio != ratio else ("met" if ratio <= limit else "not met")
        rows.append(
            {
                "N": n,
                "Spark ends (s)": ends,
                "DuckDB (s)": duck,
                "ends / DuckDB": ratio,
                "book's target": f"<= {limit:g}",
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def spark_jobs_started(spark) -> int:
    """How many Spark jobs this application has started so far (from Spark's REST API)."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/jobs"
    with urllib.request.urlopen(url, timeout=30) as resp:  # the driver's own UI, on this machine
        return len(json.load(resp))


@dataclass(frozen=True)
class Laziness:
    """Seconds to build a lazy join over a sample and over the full table, to take its first
    rows, and to count it, with the Spark jobs each step started (``table`` shows them)."""

    n_sample: int
    n_full: int
    build_sample_s: float
    build_full_s: float
    first_rows_s: float
    count_s: float
    build_jobs: int
    first_rows_jobs: int
    count_jobs: int
    pairs: int

    def table(self):
        """The four timed steps as a pandas DataFrame (what was timed, seconds, Spark jobs run)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "what was timed": [
                    f"build the DataFrame over {self.n_sample:,} trips (no action)",
                    f"build the DataFrame over {self.n_full:,} trips (no action)",
                    "first 20 rows (limit + collect)",
                    "all pairs (count)",
                ],
                "seconds": [
                    self.build_sample_s,
                    self.build_full_s,
                    self.first_rows_s,
                    self.count_s,
                ],
                "Spark jobs run": [
                    self.build_jobs,
                    self.build_jobs,
                    self.first_rows_jobs,
                    self.count_jobs,
                ],
            }
        )


def _jobs_after(spark, before: int, settle_s: float) -> int:
    """Jobs started since ``before``, once Spark's asynchronous listener has recorded them."""
    time.sleep(settle_s)
    return spark_jobs_started(spark) - before


def laziness(sample, full, r: float, *, method: str = "ends", repeats: int = 3, settle_s=1.0):
    """Time building ``return_trips`` (no action) over two Spark DataFrames, then two actions.

    Building is the median of ``repeats`` (s); ``first rows`` is ``limit(20).collect()`` and
    ``count`` counts all pairs of ``full``. Spark jobs are counted from the driver's REST API.
    """
    from fieldnotes.trips.join import return_trips

    spark = full.sparkSession
    jobs0 = spark_jobs_started(spark)
    build_small, _ = median_seconds(lambda: return_trips(sample, r, method=method), repeats)
    build_full, lazy = median_seconds(lambda: return_trips(full, r, method=method), repeats)
    build_jobs = _jobs_after(spark, jobs0, 0.0)
    jobs1 = spark_jobs_started(spark)
    t0 = time.perf_counter()
    lazy.limit(20).collect()
    first = time.perf_counter() - t0
    first_jobs = _jobs_after(spark, jobs1, settle_s)
    jobs2 = spark_jobs_started(spark)
    t0 = time.perf_counter()
    pairs = lazy.count()
    count = time.perf_counter() - t0
    count_jobs = _jobs_after(spark, jobs2, settle_s)
    return Laziness(
        n_sample=int(sample.count()),  # after the job counts above, so not among them
        n_full=int(full.count()),
        build_sample_s=build_small,
        build_full_s=build_full,
        first_rows_s=first,
        count_s=count,
        build_jobs=build_jobs,
        first_rows_jobs=first_jobs,
        count_jobs=count_jobs,
        pairs=int(pairs),
    )


def benchmark_days(n: int) -> int:
    """Days the benchmark spreads ``n`` generated trips over: ``n`` / February 2016's trips a
    day, rounded, at least 1 (so every size below about 196 k trips is one day)."""
    from fieldnotes.trips.synthetic import FEB2016_TRIPS

    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive whole number of trips, got {n!r}")
    return max(1, round(int(n) / (FEB2016_TRIPS / 29)))


def density_share(n: int, days: int) -> float:
    """Trips a day of ``n`` trips over ``days`` days, as a share of February 2016's (1.0 = the
    month's daily density)."""
    from fieldnotes.trips.synthetic import FEB2016_TRIPS

    if isinstance(days, bool) or int(days) != days or days < 1:
        raise ValueError(f"days must be a positive whole number, got {days!r}")
    return float(n) / int(days) / (FEB2016_TRIPS / 29)


def physical_plan(df) -> str:
    """The text of ``df.explain(mode="formatted")``: Spark's physical plan, tree then nodes."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        df.explain(mode="formatted")
    return buf.getvalue()


def join_plan(df) -> tuple[str, bool]:
    """(join operator, whether the exact test is its join condition) in ``df``'s physical plan.

    The operator is the first of ``BroadcastHashJoin``, ``SortMergeJoin``,
    ``ShuffledHashJoin``, ``BroadcastNestedLoopJoin`` or ``CartesianProduct`` in
    ``df.explain(mode="formatted")``; the condition counts if that node lists a
    ``Join condition`` other than ``None``.
    """
    import re

    plan = physical_plan(df)
    ops = (
        "BroadcastHashJoin|SortMergeJoin|ShuffledHashJoin|BroadcastNestedLoopJoin|CartesianProduct"
    )
    node = re.search(rf"^\(\d+\) ({ops})\b(.*?)(?=^\(\d+\) |\Z)", plan, re.M | re.S)
    if node is None:
        raise ValueError(f"no join operator ({ops}) in the physical plan:\n{plan[:2000]}")
    cond = re.search(r"^Join condition: (.*)$", node.group(2), re.M)
    return node.group(1), bool(cond and cond.group(1).strip() != "None")
