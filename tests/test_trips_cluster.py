"""The joins on a real Spark standalone cluster: same pairs as local mode, a worker killed
mid-join changes nothing, and every process the cluster started is gone afterwards."""

import os
import subprocess
import sys
import threading
import time

import pytest
from trips_helpers import as_pairs, cluster_processes_gone, oracle, stop_active_session

from fieldnotes.trips.cluster import (
    OWNER_FILE,
    executor_count,
    remove_stale_dirs,
    start_local_cluster,
)
from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.join import return_trips
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.session import driver_host_for, spark_session, to_spark
from fieldnotes.trips.synthetic import synthetic_trips

pytestmark = pytest.mark.slow

R = 60.0


@pytest.fixture(scope="module")
def planted():
    trips, plan = planted_trips(1500, R, seed=11, spread_m=800)
    return trips, plan


@pytest.fixture(scope="module")
def local_pairs(planted):
    trips, _ = planted
    spark = spark_session()
    sdf = to_spark(spark, trips)
    got = {m: as_pairs(return_trips(sdf, R, method=m)) for m in ("grid", "ends")}
    spark.stop()
    return got


@pytest.fixture(scope="module")
def cluster(local_pairs):
    stop_active_session()
    with start_local_cluster(workers=2, cores_per_worker=1, memory="1g") as c:
        spark = c.session()
        pids = c.pids()
        yield c, spark
        spark.stop()
        pids += c.pids()
        shared = c.shared_dir
        assert any((shared / "work").iterdir())  # the executors' work folders
        assert (shared / OWNER_FILE).read_text().strip() == str(os.getpid())
    assert cluster_processes_gone(pids, shared)
    assert not shared.exists()  # work folders, scratch space, event logs and Parquet all gone


def test_cluster_session_is_standalone(cluster):
    c, spark = cluster
    assert spark.sparkContext.master == c.master_url
    assert c.master_url.startswith("spark://127.0.0.1:")
    assert spark.conf.get("spark.driver.host") == "127.0.0.1"
    assert c.alive_workers() == 2
    assert executor_count(spark) == 2


def test_cluster_gives_local_mode_pairs(cluster, planted, local_pairs):
    _, spark = cluster
    trips, plan = planted
    assert int(plan["expected"].sum()) > 50
    sdf = to_spark(spark, trips, via_parquet_above=100)  # Parquet in the shared folder
    for method in ("grid", "ends"):
        assert (
            as_pairs(return_trips(sdf, R, method=method)) == local_pairs[method] == oracle(trips, R)
        )


def _stage_progress(spark) -> int:
    """Tasks completed so far in the stages running now."""
    tracker = spark.sparkContext.statusTracker()
    done = 0
    for sid in tracker.getActiveStageIds():
        info = tracker.getStageInfo(sid)
        if info is not None:
            done += info.numCompletedTasks
    return done


def _lost_executors(spark) -> int:
    import json
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/allexecutors"
    with urllib.request.urlopen(url, timeout=30) as resp:
        execs = json.load(resp)
    return sum(1 for e in execs if e["id"] != "driver" and not e["isActive"])


def test_worker_killed_mid_join_then_one_worker(cluster):
    c, spark = cluster
    r = 90.0
    trips = normalize_trips(synthetic_trips(200_000, seed=5, days=1))
    want = oracle(trips, r)
    assert len(want) > 5_000
    sdf = to_spark(spark, trips, via_parquet_above=100_000)
    result, errors = {}, []

    def run():
        try:
            result["pairs"] = as_pairs(return_trips(sdf, r, method="ends"))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    job = threading.Thread(target=run)
    job.start()
    deadline = time.monotonic() + 120
    while _stage_progress(spark) < 1 and job.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.is_alive(), "the join finished before a worker could be killed in the middle"
    c.kill_worker(0)
    job.join(timeout=300)
    assert not errors, errors
    assert result["pairs"] == want  # Spark reran the lost tasks on the surviving worker
    assert _lost_executors(spark) == 1
    # one worker left: the same pairs again
    assert as_pairs(return_trips(sdf, r, method="ends")) == want
    with pytest.raises(ValueError, match="worker 0 is not running"):
        c.kill_worker(0)


def test_stop_cleans_up_after_an_error():
    stop_active_session()
    with pytest.raises(RuntimeError, match="inside the block"):
        with start_local_cluster(workers=1, memory="512m") as c:
            pids, shared = c.pids(), c.shared_dir
            assert len(pids) >= 2 and shared.exists()
            raise RuntimeError("inside the block")
    assert cluster_processes_gone(pids, shared)
    assert not shared.exists()


def test_cluster_arguments_are_checked():
    with pytest.raises(ValueError, match="workers must be"):
        start_local_cluster(workers=0)
    with pytest.raises(ValueError, match="cores_per_worker must be"):
        start_local_cluster(cores_per_worker=0)
    with pytest.raises(ValueError, match="memory must look like"):
        start_local_cluster(memory="1 GB")


def test_driver_host_is_never_assumed_for_a_remote_master(monkeypatch):
    monkeypatch.delenv("SPARK_DRIVER_HOST", raising=False)
    assert driver_host_for("local[*]") == "127.0.0.1"
    assert driver_host_for("spark://127.0.0.1:7077") == "127.0.0.1"
    assert driver_host_for("yarn") is None
    with pytest.raises(ValueError, match="SPARK_DRIVER_HOST"):
        driver_host_for("spark://10.0.0.5:7077")
    assert driver_host_for("spark://10.0.0.5:7077", "10.0.0.9") == "10.0.0.9"
    monkeypatch.setenv("SPARK_DRIVER_HOST", "10.0.0.7")
    assert driver_host_for("spark://10.0.0.5:7077") == "10.0.0.7"


def test_folders_of_clusters_whose_process_is_gone_are_removed(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    made = {}
    for name, owner, age_s in [("dead", gone, 0), ("alive", str(os.getpid()), 0),
                               ("old", None, 3600), ("new", None, 0)]:  # fmt: skip
        folder = tmp_path / f"fieldnotes_cluster_{name}"
        (folder / "work").mkdir(parents=True)
        if owner is not None:
            (folder / OWNER_FILE).write_text(owner)
        os.utime(folder, (folder.stat().st_atime - age_s, folder.stat().st_mtime - age_s))
        made[name] = folder
    (tmp_path / "unrelated").mkdir()
    removed = remove_stale_dirs(tmp_path)
    assert sorted(removed) == sorted([made["dead"], made["old"]])
    assert not made["dead"].exists() and not made["old"].exists()
    assert made["alive"].exists() and made["new"].exists() and (tmp_path / "unrelated").exists()
