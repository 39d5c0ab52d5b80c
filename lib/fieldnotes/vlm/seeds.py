"""One helper derives every seed of the chapter from the run's ``seed`` and a purpose string.

Two purposes never share a stream (SHA-256 of both), the same pair always gives the same seed,
and a new use of randomness gets its own purpose instead of an ad-hoc offset such as ``seed + 1``.
"""

from __future__ import annotations

import hashlib

#: Derived seeds lie in [0, 2**31), valid for Python, NumPy and torch generators.
SEED_LIMIT = 2**31


def derive_seed(seed: int, purpose: str) -> int:
    """A seed in [0, 2**31) for ``purpose`` (e.g. "train scans") derived from the run's ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(purpose, str) or not purpose.strip():
        raise ValueError(f"purpose must be a non-empty string, got {purpose!r}")
    digest = hashlib.sha256(f"{seed}\x00{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_LIMIT
