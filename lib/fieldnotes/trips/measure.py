"""Honest Spark timing: wall time of an action, and the shuffle bytes the action wrote."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class SparkRun:
    """One timed action: seconds of wall time, rows it returned, shuffle bytes written."""

    seconds: float
    rows: int
    shuffle_bytes: int


def _stage_shuffle_bytes(spark) -> dict[tuple[int, int], int]:
    """Shuffle bytes written per completed stage ((id, attempt) -> bytes), from Spark's REST API."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?status=complete"
    with urllib.request.urlopen(url, timeout=30) as resp:  # the driver's own UI, on this machine
        stages = json.load(resp)
    return {(s["stageId"], s["attemptId"]): int(s.get("shuffleWriteBytes", 0)) for s in stages}


def timed_count(df) -> SparkRun:
    """Run ``df.count()`` (an action, so the whole plan executes); time it and sum its shuffles."""
    spark = df.sparkSession
    before = _stage_shuffle_bytes(spark)
    t0 = time.perf_counter()
    rows = df.count()
    seconds = time.perf_counter() - t0
    for _ in range(50):  # the listener bus is asynchronous: wait until the stages are recorded
        after = _stage_shuffle_bytes(spark)
        if len(after) > len(before):
            break
        time.sleep(0.05)
    shuffled = sum(v for k, v in after.items() if k not in before)
    return SparkRun(seconds=seconds, rows=int(rows), shuffle_bytes=int(shuffled))


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


SPARK_METHODS = ("naive", "grid", "quad", "ends")


def benchmark_targets(table, *, n_mid: int = 1_000_000, n_big: int = 10_000_000):
    """The book's targets checked on a benchmark table (pandas): one row per target, measured."""
    import numpy as np
    import pandas as pd

    t = table.set_index(["N", "engine"])

    def get(n, engine, col):
        try:
            v = t.loc[(n, engine), col]
        except KeyError:
            return np.nan
        return float(v)

    spark_mid = {m: get(n_mid, m, "seconds") for m in SPARK_METHODS[1:]}
    spark_mid = {m: s for m, s in spark_mid.items() if s == s}
    best = min(spark_mid, key=spark_mid.get) if spark_mid else None
    duck_mid = get(n_mid, "duckdb", "seconds")
    big = {m: get(n_big, m, "seconds") for m in SPARK_METHODS[1:]}
    big = {m: s for m, s in big.items() if s == s}
    best_big = min(big, key=big.get) if big else None
    cand_best = get(n_mid, best, "candidates") if best else np.nan
    rows = [
        ("best Spark method at N=1M", best, "fastest"),
        ("best Spark / DuckDB time at N=1M", spark_mid.get(best, np.nan) / duck_mid, "< 5"),
        ("best Spark time at N=10M (s)", big.get(best_big, np.nan), "< 180"),
        ("cross-join / best candidates at N=1M", float(n_mid) ** 2 / cand_best, ">= 100,000"),
        (
            "cross-join / post's grid candidates at N=1M",
            float(n_mid) ** 2 / get(n_mid, "grid", "candidates"),
            "(the post's figure)",
        ),
    ]
    return pd.DataFrame(rows, columns=["target", "measured", "book's target"])


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


def join_plan(df) -> tuple[str, bool]:
    """(join operator, whether the exact test is its join condition) in ``df``'s physical plan.

    The operator is the first of ``BroadcastHashJoin``, ``SortMergeJoin``,
    ``ShuffledHashJoin``, ``BroadcastNestedLoopJoin`` or ``CartesianProduct`` in
    ``df.explain(mode="formatted")``; the condition counts if that node lists a
    ``Join condition`` other than ``None``.
    """
    import contextlib
    import io
    import re

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        df.explain(mode="formatted")
    plan = buf.getvalue()
    ops = (
        "BroadcastHashJoin|SortMergeJoin|ShuffledHashJoin|BroadcastNestedLoopJoin|CartesianProduct"
    )
    node = re.search(rf"^\(\d+\) ({ops})\b(.*?)(?=^\(\d+\) |\Z)", plan, re.M | re.S)
    if node is None:
        raise ValueError(f"no join operator ({ops}) in the physical plan:\n{plan[:2000]}")
    cond = re.search(r"^Join condition: (.*)$", node.group(2), re.M)
    return node.group(1), bool(cond and cond.group(1).strip() != "None")
