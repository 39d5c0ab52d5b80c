"""Test data with return-trip candidates planted exactly at the edges of the definition."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldnotes.trips.geo import EIGHT_HOURS_S, check_radius, destination

GAPS_S = (0, 1, EIGHT_HOURS_S - 1, EIGHT_HOURS_S, EIGHT_HOURS_S + 1)
"""Pick-up minus drop-off gaps planted, in seconds: both edges of the strict 8-hour window."""
BEARINGS = (0, 45, 90, 135, 180, 225, 270, 315)
"""Compass bearings (degrees) at which partners are planted."""
FACTORS = (0.99, 1.01)
"""Planted distances as fractions of r: inside and outside by 1 %."""
EDGE_M = 1e-6
"""Planted distances r - EDGE_M and r + EDGE_M (metres): a join that tests d <= r, or widens
r by a relative margin, finds the outer ones; one that rounds the bound down misses the inner."""


def _wrapped(lon: np.ndarray) -> np.ndarray:
    """Longitudes (degrees) moved into [-180, 180) where they left it; others bit for bit."""
    return np.where(lon >= 180.0, lon - 360.0, np.where(lon < -180.0, lon + 360.0, lon))


def planted_trips(
    n_base: int, r: float, *, seed: int, lat: float = 40.75, lon: float = -73.98, spread_m=2000.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalized trips with a partner planted for each of ``n_base`` random trips, and the plan.

    Each partner b of base trip a picks up at one of 0.99 r, 1.01 r, r - 1 µm, r + 1 µm
    (``FACTORS``, ``EDGE_M``) from a's drop-off and drops off at one of them from a's pick-up, on
    a compass bearing, with a time gap from ``GAPS_S``.
    Returns (trips, planted) where planted has a_id, b_id and ``expected`` (True if b is a return
    trip of a by the definition). Other pairs may also match; the oracle decides those.
    """
    r = check_radius(r)
    if n_base < 1:
        raise ValueError(f"n_base must be >= 1, got {n_base}")
    rng = np.random.default_rng(seed)
    m_per_deg = 111_195.0
    plat = lat + rng.normal(0, spread_m / m_per_deg, n_base)
    plon = lon + rng.normal(0, spread_m / (m_per_deg * np.cos(np.radians(lat))), n_base)
    dlat = lat + rng.normal(0, spread_m / m_per_deg, n_base)
    dlon = lon + rng.normal(0, spread_m / (m_per_deg * np.cos(np.radians(lat))), n_base)
    t_pick = rng.integers(0, 2 * 86400, n_base).astype(np.int64) * 1_000_000
    t_drop = t_pick + rng.integers(120, 3600, n_base).astype(np.int64) * 1_000_000
    distances = np.array([f * r for f in FACTORS] + [r - EDGE_M, r + EDGE_M])
    d1 = rng.choice(distances, n_base)
    d2 = rng.choice(distances, n_base)
    b1 = rng.choice(BEARINGS, n_base) + rng.choice([0.0, 1e-3], n_base)
    b2 = rng.choice(BEARINGS, n_base)
    gap = rng.choice(GAPS_S, n_base).astype(np.int64) * 1_000_000
    bplat, bplon = destination(dlat, dlon, b1, d1)
    bdlat, bdlon = destination(plat, plon, b2, d2)
    bt_pick = t_drop + gap
    bt_drop = bt_pick + rng.integers(120, 3600, n_base).astype(np.int64) * 1_000_000
    plon, dlon = _wrapped(plon), _wrapped(dlon)
    ids = np.arange(2 * n_base, dtype=np.int64)
    perm = rng.permutation(2 * n_base)  # ids carry no hint of which trip is the partner
    trip_id = ids[perm]
    us = "datetime64[us]"
    trips = pd.DataFrame(
        {
            "trip_id": trip_id,
            "pickup_time": np.concatenate([t_pick, bt_pick]).astype(us),
            "dropoff_time": np.concatenate([t_drop, bt_drop]).astype(us),
            "pickup_lat": np.concatenate([plat, bplat]),
            "pickup_lon": np.concatenate([plon, bplon]),
            "dropoff_lat": np.concatenate([dlat, bdlat]),
            "dropoff_lon": np.concatenate([dlon, bdlon]),
        }
    )
    expected = (d1 < r) & (d2 < r) & (gap > 0) & (gap < EIGHT_HOURS_S * 1_000_000)
    planted = pd.DataFrame(
        {"a_id": trip_id[:n_base], "b_id": trip_id[n_base:], "expected": expected}
    )
    return trips.sort_values("trip_id").reset_index(drop=True), planted
