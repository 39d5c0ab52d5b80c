"""Child processes that die with the process that started them, so a killed kernel leaves none.

A notebook kernel that is killed (the "restart" button, an out-of-memory kill) never runs its
``finally`` blocks: the CPU training ranks of chapters 1 and 2 and chapter 5's chat server would
keep running, holding cores and ports. On Linux a process can ask the kernel to signal it when its
parent dies (``prctl(PR_SET_PDEATHSIG)``); :func:`die_with` does that from inside the child, so
the parent never needs an unsafe ``preexec_fn``.

A child started through ``exec`` learns its starter from the environment::

    subprocess.Popen(cmd, env=os.environ | starter_environment())   # in the parent
    die_with_starter(signal.SIGTERM)                                 # first thing in the child

Elsewhere (macOS, Windows) these calls do nothing: the parents' own cleanup still runs whenever
they exit normally.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: Environment variable carrying the starter's process id to an exec'd child.
STARTER_ENV = "FIELDNOTES_DIE_WITH"

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

__all__ = ["STARTER_ENV", "die_with", "die_with_starter", "starter_environment"]


def die_with(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Have this process receive ``sig`` when ``parent_pid`` (its parent) dies; exit at once if it
    already has. Call it in the child, before any long work."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def starter_environment() -> dict[str, str]:
    """The variable a parent passes to an exec'd child so that :func:`die_with_starter` works."""
    return {STARTER_ENV: str(os.getpid())}


def die_with_starter(sig: int = signal.SIGTERM) -> None:
    """:func:`die_with` the process named by ``$FIELDNOTES_DIE_WITH``, if set, and unset it (this
    process's own children must not inherit a pid that is not their parent's)."""
    value = os.environ.pop(STARTER_ENV, None)
    if value is None:
        return
    if not value.isdigit():
        raise ValueError(f"${STARTER_ENV} must be a process id, got {value!r}")
    die_with(int(value), sig)
