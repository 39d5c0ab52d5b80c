"""Silence what native code writes straight to file descriptors 1 and 2.

PyBullet's C library prints its build banner and URDF warnings, and the JVM behind PySpark prints
its start-up notices, past Python's ``sys.stdout``/``sys.stderr``. In a notebook kernel that text
becomes stderr output on the published page. A child process started inside the block (the
JVM) inherits the silenced descriptors for its whole life.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Point file descriptors 1 and 2 at /dev/null for the block, then restore them."""
    import ctypes

    libc = ctypes.CDLL(None)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
