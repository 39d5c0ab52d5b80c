"""A free TCP port, for the servers the book starts on this machine (Spark, PostgreSQL, uvicorn)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the OS reports free on ``host`` right now (another process may take it before
    the caller binds it; callers that can, let the server bind port 0 itself instead)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
