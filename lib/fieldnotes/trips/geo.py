"""Great-circle geometry on a spherical earth: haversine distances and grid cell sizes."""

from __future__ import annotations

import math

import numpy as np

EARTH_RADIUS_M = 6_371_000.0
"""Radius of the spherical earth used by the return-trips exercise, in metres."""

EIGHT_HOURS_S = 8 * 3600
"""The return window, in seconds."""

MAX_RADIUS_M = 10_000.0
"""Largest radius the join accepts, in metres."""

MAX_ABS_LAT = 89.0
"""Trips must stay below this |latitude| (degrees): longitude cells widen as 1 / cos(latitude)."""

KEY_BITS = 12
"""Bits per field in a packed join key; cells that collide modulo 4096 only add candidates."""


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres between points given in degrees (NumPy, broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def destination(lat, lon, bearing_deg, distance_m):
    """Point reached from (lat, lon) in degrees after ``distance_m`` metres on a bearing (degrees)."""
    p1, l1 = np.radians(lat), np.radians(lon)
    th = np.radians(bearing_deg)
    d = np.asarray(distance_m, dtype=float) / EARTH_RADIUS_M
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(th))
    l2 = l1 + np.arctan2(np.sin(th) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.degrees(p2), (np.degrees(l2) + 540.0) % 360.0 - 180.0


def check_radius(r: float) -> float:
    """Validate a matching radius in metres: 0 < r <= 10 km."""
    if isinstance(r, bool) or not isinstance(r, int | float | np.integer | np.floating):
        raise TypeError(f"r must be a number of metres, got {r!r} ({type(r).__name__})")
    r = float(r)
    if not math.isfinite(r) or r <= 0 or r > MAX_RADIUS_M:
        raise ValueError(f"r must be in (0, {MAX_RADIUS_M:.0f}] metres, got {r}")
    return r


def cell_size_deg(r: float, max_abs_lat: float, *, factor: float = 1.0) -> tuple[float, float]:
    """Cell height and width (degrees) so that points closer than r metres differ by under 1/factor.

    Precisely: d < r implies |dlat| < height / factor and |dlon| < width / factor for points up to
    ``max_abs_lat`` degrees. From sin^2(d/2R) = sin^2(dphi/2) + cos(phi1)cos(phi2) sin^2(dlmb/2):
    d < r implies dphi < r/R and sin(dlmb/2) < sin(r/2R)/cos(max_abs_lat). A tiny relative margin
    covers floating-point rounding. (Scaling longitude by cos(latitude) alone is not a bound: the
    great circle between two points on a parallel is shorter than the parallel.)
    """
    r = check_radius(r)
    if not 0 <= max_abs_lat < MAX_ABS_LAT:
        raise ValueError(f"max_abs_lat must be in [0, {MAX_ABS_LAT:g}) degrees, got {max_abs_lat}")
    margin = 1.0 + 1e-9
    dlat = math.degrees(r / EARTH_RADIUS_M) * margin
    s = math.sin(r / (2 * EARTH_RADIUS_M)) / math.cos(math.radians(max_abs_lat))
    dlon = math.degrees(2 * math.asin(min(1.0, s))) * margin
    return dlat * factor, dlon * factor


def lon_cells(width_deg: float) -> int:
    """Cells around a parallel, each at least ``width_deg`` degrees wide (360 / n >= width).

    Cell indices wrap modulo n, so trips on both sides of the antimeridian are neighbours. n is
    never 1 more than a multiple of 2**KEY_BITS: a wrapped neighbour (cell n-1 next to cell 0)
    then never shares its packed field with its own cell.
    """
    n = int(360.0 // width_deg)
    if n % (1 << KEY_BITS) == 1:
        n -= 1
    if n < 4:
        raise ValueError(f"longitude cells {width_deg} degrees wide leave under 4 around the earth")
    return n
