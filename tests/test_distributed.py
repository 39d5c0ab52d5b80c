"""Tests for fieldnotes.distributed: the CPU multi-process launcher shared by chapters 1 and 2."""

from __future__ import annotations

import os
import time

import pytest
from processes import wait_gone

from fieldnotes.distributed import (
    RankError,
    cache_dir,
    init_gloo,
    rank_environment,
    run_on_cpu_ranks,
)

# --- functions the spawned ranks run (module level, so the children can import them) ----------


def _allreduce(rank: int, world_size: int, base: int) -> dict:
    """All-reduce (rank + base) and report what the rank saw of its environment."""
    import torch
    import torch.distributed as dist

    r, w = init_gloo()
    t = torch.tensor([float(rank + base)])
    dist.all_reduce(t)
    keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "DS_ACCELERATOR")
    return {
        "rank": r,
        "world": w,
        "sum": t.item(),
        "env": {k: os.environ[k] for k in keys},
        "ext": os.environ["TORCH_EXTENSIONS_DIR"],
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
    }


def _fail_on_rank_one(rank: int, world_size: int) -> int:
    """Rank 1 raises; rank 0 waits in a barrier that can never complete."""
    import torch.distributed as dist

    init_gloo()
    if rank == 1:
        raise ArithmeticError("deliberate failure on rank one")
    dist.barrier()
    return rank


def _die_on_rank_zero(rank: int, world_size: int) -> int:
    """Rank 0 vanishes without a word (as after a segfault or an OOM kill)."""
    if rank == 0:
        os._exit(7)
    time.sleep(60)
    return rank


def _sleep(rank: int, world_size: int, seconds: float) -> int:
    time.sleep(seconds)
    return rank


def _deepspeed_allreduce(rank: int, world_size: int) -> list[float]:
    """Join the group through DeepSpeed's own initialiser and all-reduce through deepspeed.comm."""
    import deepspeed
    import deepspeed.comm as dcomm
    import torch
    from deepspeed.accelerator import get_accelerator

    deepspeed.init_distributed(dist_backend="gloo")
    t = torch.arange(4, dtype=torch.float32) * (rank + 1)
    dcomm.all_reduce(t)
    return [get_accelerator().device_name(), dcomm.get_world_size()] + t.tolist()


# --- tests -----------------------------------------------------------------------------------


def test_results_come_back_in_rank_order_with_the_promised_environment():
    before = {k: os.environ.get(k) for k in ("RANK", "MASTER_PORT", "DS_ACCELERATOR")}
    results = run_on_cpu_ranks(_allreduce, 2, 10)
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["world"] == 2 for r in results)
    assert [r["sum"] for r in results] == [21.0, 21.0]  # (0 + 10) + (1 + 10)
    for rank, r in enumerate(results):
        assert r["env"] == {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "DS_ACCELERATOR": "cpu",
        }
        assert r["ext"] == str(cache_dir() / "torch_extensions")
        assert r["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
        assert r["pid"] != os.getpid()
    assert results[0]["pid"] != results[1]["pid"]
    # the parent's environment is left as it was
    assert {k: os.environ.get(k) for k in before} == before


def test_single_rank_and_larger_worlds():
    assert [r["sum"] for r in run_on_cpu_ranks(_allreduce, 1, 5)] == [5.0]
    three = run_on_cpu_ranks(_allreduce, 3, 0)
    assert [r["sum"] for r in three] == [3.0, 3.0, 3.0]


def test_a_failing_rank_raises_with_its_traceback_and_stops_the_others():
    start = time.monotonic()
    with pytest.raises(RankError) as info:
        run_on_cpu_ranks(_fail_on_rank_one, 2, timeout_s=120)
    assert info.value.rank == 1
    assert "ArithmeticError: deliberate failure on rank one" in info.value.remote_traceback
    assert "_fail_on_rank_one" in str(info.value)
    assert time.monotonic() - start < 100  # did not wait for the timeout


def test_a_rank_that_dies_silently_is_reported():
    start = time.monotonic()
    with pytest.raises(RankError, match="exited with code 7") as info:
        run_on_cpu_ranks(_die_on_rank_zero, 2, timeout_s=120)
    assert info.value.rank == 0
    assert time.monotonic() - start < 50


def test_a_hang_past_the_timeout_raises_timeout_error():
    with pytest.raises(TimeoutError, match="did not finish within 3"):
        run_on_cpu_ranks(_sleep, 2, 60.0, timeout_s=3)


def test_bad_arguments_are_rejected_by_name():
    with pytest.raises(ValueError, match="module-level"):
        run_on_cpu_ranks(lambda r, w: r, 2)

    def local(rank, world_size):
        return rank

    with pytest.raises(ValueError, match="module-level"):
        run_on_cpu_ranks(local, 2)
    with pytest.raises(ValueError, match="world_size"):
        run_on_cpu_ranks(_sleep, 0, 0.0)
    with pytest.raises(TypeError, match="world_size"):
        run_on_cpu_ranks(_sleep, 2.0, 0.0)
    with pytest.raises(ValueError, match="timeout_s"):
        run_on_cpu_ranks(_sleep, 2, 0.0, timeout_s=0)
    with pytest.raises(TypeError, match="fn"):
        run_on_cpu_ranks(3, 2)


def test_rank_environment_and_cache_override(monkeypatch, tmp_path):
    monkeypatch.setenv("FIELDNOTES_CACHE", str(tmp_path))
    env = rank_environment(1, 4, 29999)
    assert env["TORCH_EXTENSIONS_DIR"] == str(tmp_path / "torch_extensions")
    assert env["MASTER_PORT"] == "29999"
    assert env["RANK"] == "1" and env["WORLD_SIZE"] == "4"
    assert int(env["OMP_NUM_THREADS"]) == max(1, len(os.sched_getaffinity(0)) // 4)


@pytest.mark.slow
def test_deepspeed_joins_the_group_on_the_cpu_accelerator():
    results = run_on_cpu_ranks(_deepspeed_allreduce, 2, timeout_s=600)
    # sum over ranks of arange(4) * (rank + 1) = arange(4) * 3
    assert results == [["cpu", 2, 0.0, 3.0, 6.0, 9.0]] * 2


def _write_pid_and_sleep(rank: int, world_size: int, folder: str) -> int:
    """Record this rank's pid in ``folder`` and sleep far longer than the test waits."""
    from pathlib import Path

    Path(folder, f"rank{rank}.pid").write_text(str(os.getpid()))
    time.sleep(300)
    return rank


def test_two_runs_started_together_do_not_race_for_a_port():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(run_on_cpu_ranks, _allreduce, 2, base, timeout_s=240) for base in (0, 100)
        ]
        sums = [[r["sum"] for r in run.result(timeout=300)] for run in runs]
    assert sums == [[1.0, 1.0], [201.0, 201.0]]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_ranks_die_with_a_launcher_that_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import test_distributed as t; "
            "from fieldnotes.distributed import run_on_cpu_ranks; "
            "run_on_cpu_ranks(t._write_pid_and_sleep, 2, sys.argv[2])",
            str(Path(__file__).parent),
            str(tmp_path),
        ]
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("rank*.pid"))) < 2:
            assert launcher.poll() is None, "the launcher exited before its ranks started"
            assert time.monotonic() < deadline, "the ranks did not start within 120 s"
            time.sleep(0.2)
        pids = [int(p.read_text()) for p in tmp_path.glob("rank*.pid")]
        launcher.send_signal(signal.SIGKILL)  # as when a notebook kernel is killed
        launcher.wait(timeout=10)
        assert all(wait_gone(pid, 10) for pid in pids), f"ranks {pids} outlived the launcher"
    finally:
        launcher.kill()
        launcher.wait(timeout=10)
