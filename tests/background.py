"""The CI-size notebooks' second runs, executed in the background at the lowest CPU priority
while the rest of the suite runs, so that the reproducibility check does not add a second
sequential pass over every chapter (about 500 s of the suite's wall time on 2 cores).

Each rerun is ``python -m fieldnotes.runner execute NAME OUT --ci`` under ``nice -n 19``: the
same parameters as the first run, its own results folder, one notebook at a time. The tests that
compare the two runs are ordered last (marker ``after_the_rest``) and wait for their notebook.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from fieldnotes.book import RESULTS_ENV

#: Lowest priority: a first-run notebook or a timed test on the same cores keeps nearly all the CPU.
NICENESS = 19
#: Wall seconds one rerun may take before it counts as failed (a starved rerun finishes at the end,
#: when nothing else runs; a hung kernel must not hold CI past its limit).
RERUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Rerun:
    """Where a finished second run left its executed notebook and key numbers, or why it failed."""

    notebook: Path
    results: Path
    returncode: int
    log_tail: str


class BackgroundReruns:
    """Second runs of ``names`` (in order) from ``root`` into ``workdir``, started by :meth:`start`."""

    def __init__(self, root: Path, workdir: Path):
        self.root, self.workdir = Path(root), Path(workdir)
        self._done: dict[str, threading.Event] = {}
        self._result: dict[str, Rerun] = {}
        self._process: subprocess.Popen | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, names: list[str]) -> None:
        """Start rerunning ``names`` one after another on a background thread."""
        self._done = {n: threading.Event() for n in names}
        self._thread = threading.Thread(target=self._run_all, args=(list(names),), daemon=True)
        self._thread.start()

    def _run_all(self, names: list[str]) -> None:
        for name in names:
            if not self._stopped.is_set():
                self._result[name] = self._run_one(name)
            self._done[name].set()

    def _run_one(self, name: str) -> Rerun:
        out = self.workdir / name
        out.mkdir(parents=True, exist_ok=True)
        notebook, log = out / f"{name}.ipynb", out / "rerun.log"
        env = os.environ | {RESULTS_ENV: str(out)}
        command = ["nice", "-n", str(NICENESS), sys.executable, "-m", "fieldnotes.runner",
                   "execute", name, str(notebook), "--ci"]
        with log.open("w") as sink:
            self._process = subprocess.Popen(command, cwd=self.root, env=env, stdout=sink,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = self._process.wait(timeout=RERUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
                code = -9
        tail = log.read_text(errors="replace")[-3000:]
        return Rerun(notebook, out, code, tail)

    def result(self, name: str) -> Rerun:
        """Wait for ``name``'s rerun and return it (KeyError if it was never started)."""
        self._done[name].wait()
        if name not in self._result:
            raise RuntimeError(f"the rerun of {name} was stopped before it ran")
        return self._result[name]

    def _kill(self) -> None:
        """Kill the running rerun's whole process group (its kernel, ranks and servers)."""
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, 9)
            except ProcessLookupError:
                pass
            self._process.wait()

    def stop(self) -> None:
        """Stop after the current rerun is killed (the session is ending)."""
        self._stopped.set()
        self._kill()
        if self._thread is not None:
            self._thread.join(timeout=30)
