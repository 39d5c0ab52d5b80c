"""Test helpers: whether a process is still running (shared by the tests of killed launchers)."""

from __future__ import annotations

import time


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid: int, seconds: float) -> bool:
    """Poll until ``pid`` is :func:`gone` or ``seconds`` pass; return whether it is gone."""
    deadline = time.monotonic() + seconds
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return gone(pid)
