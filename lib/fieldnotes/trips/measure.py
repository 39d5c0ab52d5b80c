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
    """The issue's targets checked on a benchmark table (pandas): one row per target, measured."""
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
    return pd.DataFrame(rows, columns=["target", "measured", "issue's target"])


def spark_jobs_started(spark) -> int:
    """How many Spark jobs this application has started so far (from Spark's REST API)."""
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/jobs"
    with urllib.request.urlopen(url, timeout=30) as resp:  # the driver's own UI, on this machine
        return len(json.load(resp))
