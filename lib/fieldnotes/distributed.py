"""Run a function on several CPU processes joined in one gloo group (DeepSpeed, torch.distributed).

The book's distributed experiments (ZeRO stages in chapter 1, data-parallel training in
chapter 2) run on a laptop or a 2-core CI machine: each "GPU" is a CPU process, the collectives
go through gloo, and DeepSpeed is told to use its CPU accelerator. ``run_on_cpu_ranks`` does the
launching that ``torchrun``/``deepspeed`` would do, from inside a notebook or a test::

    # in an importable module (spawned processes import fn by name; a notebook cell will not do)
    def train(rank: int, world_size: int, steps: int) -> dict:
        init_gloo()                      # or: deepspeed.init_distributed(dist_backend="gloo")
        ...
        return {"rank": rank, "loss": loss}

    results = run_on_cpu_ranks(train, 2, 10)   # [rank 0's dict, rank 1's dict]

What each rank gets, set *before* it imports anything (so DeepSpeed and OpenMP see it):

- ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT`` and
  ``TORCHELASTIC_USE_AGENT_STORE=True``: as under ``torchrun``, the launcher (here the calling
  process) already hosts the rendezvous store on a port the OS gave it, and every rank joins it
  as a client. No port is picked, released and re-bound later, so two runs started at the same
  moment (two notebooks, two tests) can never race for one port;
- ``DS_ACCELERATOR=cpu`` so DeepSpeed never looks for CUDA;
- ``TORCH_EXTENSIONS_DIR`` = ``<cache>/torch_extensions``, where ``<cache>`` is
  ``$FIELDNOTES_CACHE`` or ``.cache/`` under the repository root: DeepSpeed compiles a small
  ``shm_comm`` extension at its first start (20-60 s) and reuses it from there;
- ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and ``torch.set_num_threads`` =
  max(1, cores // world_size), so the ranks do not fight over the cores.

Nothing is initialised beyond the environment: ``fn`` calls :func:`init_gloo` (plain
torch.distributed) or ``deepspeed.init_distributed(dist_backend="gloo")``. A rank that raises makes
``run_on_cpu_ranks`` raise :class:`RankError` carrying that rank's traceback (the other ranks,
probably stuck in a collective, are killed); a run longer than ``timeout_s`` kills every rank and
raises :class:`TimeoutError`. Results travel back pickled through a queue, so they must be picklable
(plain numbers, dicts, lists, DataFrames; move tensors to CPU and prefer ``.tolist()``).
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing as mp
import os
import queue as queue_module
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fieldnotes.lifetime import die_with

CACHE_ENV = "FIELDNOTES_CACHE"

__all__ = [
    "RankError",
    "cache_dir",
    "cpu_cores",
    "init_gloo",
    "rank_environment",
    "run_on_cpu_ranks",
]


class RankError(RuntimeError):
    """A rank raised or died; ``.rank`` is its number, ``.remote_traceback`` its traceback."""

    def __init__(self, rank: int, remote_traceback: str):
        self.rank = rank
        self.remote_traceback = remote_traceback
        super().__init__(f"rank {rank} failed:\n{remote_traceback}")


def cache_dir() -> Path:
    """The project cache folder: ``$FIELDNOTES_CACHE``, else ``<repo>/.cache`` or ``./.cache``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    from fieldnotes.book import repo_root

    root = repo_root()
    return (root if root is not None else Path.cwd()) / ".cache"


def cpu_cores() -> int:
    """Number of CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def rank_environment(rank: int, world_size: int, port: int) -> dict[str, str]:
    """The environment variables one rank runs with (see the module docstring)."""
    threads = str(max(1, cpu_cores() // world_size))
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_WORLD_SIZE": str(world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        # the launcher hosts the store on MASTER_PORT; rank 0 joins it rather than binding it
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "DS_ACCELERATOR": "cpu",
        "TORCH_EXTENSIONS_DIR": str(cache_dir() / "torch_extensions"),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        # DeepSpeed's CPU accelerator reads these to size its shared-memory collectives
        "CCL_WORKER_COUNT": "1",
    }


def init_gloo(timeout_s: float = 300.0) -> tuple[int, int]:
    """Join the gloo process group described by the rank's environment; return (rank, world_size).

    Does nothing (but still returns) if the group is already initialised, so it can be called
    before ``deepspeed.initialize`` as well.
    """
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(
            backend="gloo",
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return dist.get_rank(), dist.get_world_size()


#: Held while a rank is started: its environment is os.environ at that moment, which two
#: launches from two threads would otherwise mix.
_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Temporarily set ``env`` in ``os.environ`` (a spawned child inherits it at start)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _rank_main(
    fn: Callable[..., Any], rank: int, world_size: int, args: tuple, results, launcher_pid: int
) -> None:
    """Body of one spawned rank: run ``fn`` and put ``(rank, ok, payload)`` on ``results``."""
    die_with(launcher_pid)
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        value = fn(rank, world_size, *args)
        results.put((rank, True, value))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        results.put((rank, False, traceback.format_exc()))
        return
    finally:
        with contextlib.suppress(Exception):
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


def _stop(processes: list) -> None:
    """Kill every still-running process and reap them all."""
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=10)


def run_on_cpu_ranks(fn, world_size: int, *args, timeout_s: float = 900.0) -> list:
    """Run fn(rank, world_size, *args) in world_size fresh CPU processes joined in one gloo group; return each rank's (picklable) result in rank order."""  # noqa: E501
    if not callable(fn):
        raise TypeError(f"fn must be a callable, got {fn!r} ({type(fn).__name__})")
    qualname = getattr(fn, "__qualname__", "")
    if (
        "<locals>" in qualname
        or "<lambda>" in qualname
        or getattr(fn, "__module__", "")
        in (
            "__main__",
            None,
        )
    ):
        raise ValueError(
            f"fn must be a module-level function in an importable module (spawned ranks import it "
            f"by name), got {getattr(fn, '__module__', '?')}.{qualname or fn!r}"
        )
    if isinstance(world_size, bool) or not isinstance(world_size, int):
        raise TypeError(f"world_size must be an int, got {world_size!r}")
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0 seconds, got {timeout_s!r}")

    (cache_dir() / "torch_extensions").mkdir(parents=True, exist_ok=True)
    from torch.distributed import TCPStore

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    # the rendezvous store, bound here on a port the OS assigns and held until the ranks are done
    store = TCPStore(
        "127.0.0.1",
        0,
        world_size,
        is_master=True,
        wait_for_workers=False,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    processes = []
    try:
        for rank in range(world_size):
            p = ctx.Process(
                target=_rank_main,
                args=(fn, rank, world_size, args, results, os.getpid()),
                name=f"fieldnotes-rank{rank}",
                daemon=True,
            )
            with _START_LOCK, _environment(rank_environment(rank, world_size, store.port)):
                p.start()
            processes.append(p)

        deadline = time.monotonic() + timeout_s
        collected: dict[int, Any] = {}
        while len(collected) < world_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = sorted(set(range(world_size)) - set(collected))
                raise TimeoutError(
                    f"ranks {missing} of {world_size} did not finish within {timeout_s} s; "
                    f"all ranks were killed"
                )
            try:
                rank, ok, payload = results.get(timeout=min(0.5, remaining))
            except queue_module.Empty:
                # a rank that died without reporting (segfault, OOM kill) never will
                for rank, p in enumerate(processes):
                    if rank not in collected and not p.is_alive() and p.exitcode not in (None, 0):
                        # give a report it may have queued just before dying a moment to arrive
                        try:
                            r, ok, payload = results.get(timeout=1.0)
                        except queue_module.Empty:
                            raise RankError(
                                rank, f"process exited with code {p.exitcode} without a result"
                            ) from None
                        if not ok:
                            raise RankError(r, payload) from None
                        collected[r] = payload
                continue
            if not ok:
                raise RankError(rank, payload)
            collected[rank] = payload
        for p in processes:
            p.join(timeout=30)
        return [collected[r] for r in range(world_size)]
    finally:
        _stop(processes)
        results.close()
        results.join_thread()
        del store
