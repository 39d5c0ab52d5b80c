"""A real Spark standalone cluster on this machine: one master and N worker JVMs on 127.0.0.1.

The master and workers are started from the installed pyspark distribution
(``$SPARK_HOME/bin/spark-class org.apache.spark.deploy.master.Master`` and ``...worker.Worker``;
the pip package has no ``sbin`` scripts), each in its own process group, so ``kill_worker`` can
SIGKILL a worker together with the executor it launched, as when a machine dies. Work folders,
executor scratch space (``SPARK_LOCAL_DIRS``), event logs and the Parquet files ``to_spark``
writes all live under one shared folder, which every process here can read; on a real cluster
that folder must be storage every host mounts (see the README's cluster recipe).

    with start_local_cluster(workers=2) as cluster:
        spark = cluster.session()
        ...
        cluster.kill_worker(0)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fieldnotes.ports import free_port
from fieldnotes.trips.session import SHARED_DIR_KEY

HOST = "127.0.0.1"
"""Address the master, the workers and the driver bind to and advertise."""

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"

DIR_PREFIX = "fieldnotes_cluster_"
"""Name prefix of the temporary folder a cluster makes for itself (under the system temp dir)."""
OWNER_FILE = "owner.pid"
"""File in that folder naming the process that started the cluster."""


def spark_home() -> Path:
    """The installed pyspark distribution's folder (holds ``bin/spark-class`` and ``jars``)."""
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").exists():
        raise FileNotFoundError(f"no bin/spark-class in the pyspark installation at {home}")
    return home


def _check_positive(name: str, value: object) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_memory(memory: str) -> str:
    """Validate a JVM memory size such as ``512m`` or ``1g``."""
    if not isinstance(memory, str) or not memory[:-1].isdigit() or memory[-1] not in "mg":
        raise ValueError(f"memory must look like '512m' or '1g', got {memory!r}")
    return memory


@dataclass
class LocalCluster:
    """Handles on a running standalone cluster; use ``start_local_cluster`` to make one.

    ``master_url`` is ``spark://127.0.0.1:PORT``; ``shared_dir`` the folder every process reads
    and writes (work folders, scratch space, event logs, temporary Parquet); ``workers`` the
    worker processes by index (None once killed).
    """

    master_url: str
    master_ui: str
    shared_dir: Path
    cores_per_worker: int
    memory: str
    master: subprocess.Popen
    workers: list[subprocess.Popen | None] = field(default_factory=list)
    own_dir: bool = True
    start_timeout_s: float = 90.0
    ready: bool = False

    def wait_ready(self) -> None:
        """Block until the master lists every started worker as ALIVE (at most
        ``start_timeout_s`` from now); stop the cluster and raise RuntimeError if it does not."""
        if not self.ready:
            _wait_for(self, len(self.workers), self.start_timeout_s, self.shared_dir / "logs")
            self.ready = True

    @property
    def spark_conf(self) -> dict[str, str]:
        """Settings a driver needs to use this cluster: an executor size that fits a worker,
        scratch space, event logs and ``to_spark``'s Parquet under ``shared_dir``. (The driver
        advertises 127.0.0.1 to a master on 127.0.0.1: ``session.driver_host_for``.)"""
        events = self.shared_dir / "events"
        events.mkdir(parents=True, exist_ok=True)
        return {
            "spark.executor.memory": self.memory,
            "spark.executor.cores": str(self.cores_per_worker),
            "spark.local.dir": str(self.shared_dir / "driver-local"),
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": events.as_uri(),
            SHARED_DIR_KEY: str(self.shared_dir / "data"),
        }

    def session(self, *, executor_timeout_s: float = 90.0, **kwargs):
        """A SparkSession on this cluster (``spark_session`` with ``spark_conf`` added and, unless
        given, 2 shuffle partitions per core plus 4, as in local mode), once every live worker's
        executor has registered; stopped again, with a RuntimeError, if they have not after
        ``executor_timeout_s`` seconds (e.g. when they cannot reach the driver's address)."""
        from fieldnotes.trips.session import spark_session

        self.wait_ready()
        cores = len(self.workers) * self.cores_per_worker
        kwargs.setdefault("shuffle_partitions", 2 * cores + 4)
        extra = {**self.spark_conf, **kwargs.pop("extra_conf", {})}
        spark = spark_session(self.master_url, extra_conf=extra, **kwargs)
        try:
            self.wait_for_executors(
                spark, sum(w is not None for w in self.workers), executor_timeout_s
            )
        except RuntimeError:
            spark.stop()
            raise
        return spark

    def wait_for_executors(self, spark, n: int, timeout_s: float = 90.0) -> None:
        """Block until ``spark`` has ``n`` executors registered (they start asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while executor_count(spark) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{executor_count(spark)} of {n} executors registered after {timeout_s:.0f} s; "
                    f"worker logs under {self.shared_dir / 'logs'}"
                )
            time.sleep(0.2)

    def alive_workers(self) -> int:
        """Workers the master currently lists as ALIVE (from its JSON status page)."""
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=10) as resp:
            status = json.load(resp)  # the master's own UI, on this machine
        return sum(w.get("state") == "ALIVE" for w in status.get("workers", []))

    def _processes(self) -> list:
        """psutil handles on the master, the live workers and every process they started."""
        import psutil

        out = []
        for proc in (self.master, *self.workers):
            if proc is None or proc.poll() is not None:
                continue
            try:
                ps = psutil.Process(proc.pid)
                out += [ps, *ps.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return out

    def pids(self) -> list[int]:
        """Process ids of the master, the live workers and every process they started."""
        return [p.pid for p in self._processes()]

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` and the executor it launched (its whole process group)."""
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"i must be a worker index, got {i!r}")
        if not 0 <= i < len(self.workers) or self.workers[i] is None:
            raise ValueError(f"worker {i} is not running (workers: {len(self.workers)})")
        proc = self.workers[i]
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        self.workers[i] = None

    def stop(self, wait_s: float = 15.0) -> None:
        """Stop every process the cluster started (SIGTERM, then SIGKILL for any still there
        after ``wait_s`` seconds), wait until they are gone, and remove its own folder."""
        import psutil

        procs = self._processes()
        for proc in (*self.workers, self.master):
            if proc is not None and proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=wait_s)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=wait_s)
        for proc in (*self.workers, self.master):
            if proc is not None:
                proc.wait()
        self.workers = [None] * len(self.workers)
        if self.own_dir:
            _remove_dir(self.shared_dir)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def executor_count(spark) -> int:
    """Executors registered with ``spark``'s driver now (the driver itself not counted)."""
    return len(spark.sparkContext._jsc.sc().statusTracker().getExecutorInfos()) - 1


def _remove_dir(path: Path, attempts: int = 5) -> None:
    """Remove ``path`` and everything in it; retry briefly while a just-stopped JVM's files
    vanish underneath, and raise OSError naming the folder if it is still there."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.2)
    raise OSError(f"could not remove the cluster's folder {path}")


def _owner_alive(folder: Path) -> bool:
    """Whether the process named in ``folder``'s owner file still runs (False without one)."""
    try:
        pid = int((folder / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_dirs(parent: str | Path | None = None, *, min_age_s: float = 300.0) -> list[Path]:
    """Remove the folders earlier clusters left in ``parent`` (default: the system temporary
    directory) when the process that started them is gone (a killed kernel or test run runs no
    ``stop``). A folder with no owner file counts as stale once it is ``min_age_s`` seconds old.
    Returns the folders removed."""
    removed = []
    for folder in sorted(Path(parent or tempfile.gettempdir()).glob(f"{DIR_PREFIX}*")):
        if not folder.is_dir() or _owner_alive(folder):
            continue
        try:
            age = time.time() - folder.stat().st_mtime
        except OSError:
            continue  # removed meanwhile
        if not (folder / OWNER_FILE).exists() and age < min_age_s:
            continue  # maybe being made right now
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (its own, from ``start_new_session``)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """In a child before exec (Linux): receive SIGTERM when the process that started it exits,
    so a crashed notebook kernel or test run leaves no daemon behind."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: stop() and the atexit hook still clean up


def _spawn(cls, args, env, log: Path, netns: str | None) -> subprocess.Popen:
    """Start ``spark-class cls args`` in a new process group (inside network namespace
    ``netns`` when given, through ``ip netns exec``), output to ``log``."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*prefix, str(spark_home() / "bin" / "spark-class"), cls, *args],
            preexec_fn=_die_with_parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_for(cluster: LocalCluster, workers: int, timeout_s: float, logs: Path) -> None:
    """Block until the master lists ``workers`` ALIVE workers; stop and raise past timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cluster.master.poll() is not None:
            break
        try:
            if cluster.alive_workers() >= workers:
                return
        except OSError:
            pass  # the master's UI is not up yet
        time.sleep(0.25)
    tail = "".join(p.read_text(errors="replace")[-1500:] for p in sorted(logs.glob("*.log")))
    cluster.stop()
    raise RuntimeError(
        f"the standalone cluster did not start {workers} workers in "
        f"{timeout_s:.0f} s; logs:\n{tail}"
    )


def start_local_cluster(
    workers: int = 2,
    cores_per_worker: int = 1,
    memory: str = "1g",
    *,
    shared_dir: str | Path | None = None,
    daemon_memory: str = "256m",
    timeout_s: float = 90.0,
    host: str = HOST,
    netns: str | None = None,
    wait: bool = True,
) -> LocalCluster:
    """Start a Spark standalone master and ``workers`` workers on 127.0.0.1 and wait for them.

    ``host`` and ``netns`` put the master and workers on another address inside a Linux network
    namespace made beforehand (``ip netns add``, a veth pair; as root), so that the driver in
    the root namespace is really on another host: the session then needs ``driver_host`` set to
    the root side's address.

    Each worker offers ``cores_per_worker`` cores and ``memory`` (JVM size, e.g. ``1g``) to
    executors; the master and worker daemons themselves get ``daemon_memory``. ``shared_dir``
    (default: a new temporary folder, removed by ``stop``) holds work folders, scratch space,
    event logs and temporary Parquet; ``stop`` removes it, and folders that clusters of processes
    no longer running left behind are removed first (``remove_stale_dirs``). Use the result as a
    context manager so that every process it started is stopped. With ``wait=False`` it returns
    as soon as the processes are launched, so the JVMs start while the caller does other work;
    ``session()`` (or ``wait_ready()``) then waits for the workers.
    """
    _check_positive("workers", workers)
    _check_positive("cores_per_worker", cores_per_worker)
    memory, daemon_memory = _check_memory(memory), _check_memory(daemon_memory)
    own = shared_dir is None
    if own:
        remove_stale_dirs()
        root = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        (root / OWNER_FILE).write_text(f"{os.getpid()}\n")
    else:
        root = Path(shared_dir)
    logs = root / "logs"
    for sub in ("logs", "work", "local", "driver-local", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": host,
        "SPARK_DAEMON_MEMORY": daemon_memory,
        "SPARK_LOCAL_DIRS": str(root / "local"),
        "SPARK_WORKER_DIR": str(root / "work"),
        "SPARK_LOG_DIR": str(logs),
    }
    env.pop("PYSPARK_GATEWAY_PORT", None)  # a notebook's own gateway is not the daemons'
    port, ui = free_port(), free_port()
    master = _spawn(
        MASTER_CLASS,
        ["--host", host, "--port", str(port), "--webui-port", str(ui)],
        env,
        logs / "master.log",
        netns,
    )
    cluster = LocalCluster(
        master_url=f"spark://{host}:{port}",
        master_ui=f"http://{host}:{ui}",
        shared_dir=root,
        cores_per_worker=cores_per_worker,
        memory=memory,
        master=master,
        own_dir=own,
        start_timeout_s=timeout_s,
    )
    for i in range(workers):
        args = [
            cluster.master_url,
            "--host",
            host,
            "--cores",
            str(cores_per_worker),
            "--memory",
            memory,
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(root / "work"),
        ]
        cluster.workers.append(_spawn(WORKER_CLASS, args, env, logs / f"worker-{i}.log", netns))
    atexit.register(cluster.stop)  # stop() is safe to call again
    if wait:
        cluster.wait_ready()
    return cluster
