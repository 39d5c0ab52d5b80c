"""Helpers shared by chapter 3's tests: pairs as sorted lists, the oracle's pairs, sessions."""

from __future__ import annotations

import psutil

from fieldnotes.trips.oracle import return_trips_exact


def as_pairs(df) -> list[tuple[int, int]]:
    """(a_id, b_id) pairs of a Spark or pandas result, sorted."""
    p = df.toPandas() if hasattr(df, "toPandas") else df
    return sorted(zip(p["a_id"].tolist(), p["b_id"].tolist(), strict=True))


def oracle(trips, r: float) -> list[tuple[int, int]]:
    """The oracle's pairs of a pandas frame of trips within r metres, sorted."""
    return as_pairs(return_trips_exact(trips, r))


def stop_active_session() -> None:
    """Stop the SparkSession of this process, if one is running (before a cluster's own)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def cluster_processes_gone(pids, shared_dir) -> bool:
    """No pid of a cluster alive, and no process on the machine names its folder."""
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    named = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(shared_dir) in cmd:
            named.append(proc.pid)
    return alive == [] and named == []
