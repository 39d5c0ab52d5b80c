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


MARGIN = 1.0 + 1e-9
"""Relative widening of every cell bound: covers floating-point rounding of the bounds."""


def lat_cell_deg(r: float, *, factor: float = 1.0) -> float:
    """Height (degrees) of a latitude band: points closer than r metres differ in latitude by
    under 1/factor of it (d < r implies |dphi| < r / R)."""
    r = check_radius(r)
    return math.degrees(r / EARTH_RADIUS_M) * MARGIN * factor


def band_edge_deg(band, height_deg: float):
    """Largest |latitude| (degrees, at most 90) in band ``band`` and its two neighbours, where band
    j spans [j * height, (j + 1) * height) (NumPy, broadcasting over integer bands)."""
    j = np.asarray(band, dtype=float)
    return np.minimum(90.0, np.maximum(np.abs((j - 1) * height_deg), np.abs((j + 2) * height_deg)))


def band_lon_cells(band, r: float, *, factor: float = 1.0):
    """Cells around the parallel in latitude band ``band`` (NumPy, broadcasting; at least 1).

    Each is 360 / n degrees wide, at least ``factor`` times the largest longitude gap of two
    points closer than r metres anywhere in the band or its neighbours: from
    sin^2(d/2R) = sin^2(dphi/2) + cos(phi1)cos(phi2) sin^2(dlmb/2), d < r implies
    sin(|dlmb|/2) < sin(r/2R) / cos(edge), with edge = ``band_edge_deg``. (Scaling by
    cos(latitude) alone is not a bound: the great circle between two points on a parallel is
    shorter than the parallel.) A band whose bound reaches past 180 degrees, at a pole, is one
    cell. A pair in bands i and j (|i - j| <= 1) then lies within one cell of j's width. Spark
    (``join``) and DuckDB (``duck``) evaluate this same formula per row.
    """
    r = check_radius(r)
    s = math.sin(r / (2 * EARTH_RADIUS_M))
    c = np.cos(np.radians(band_edge_deg(band, lat_cell_deg(r, factor=factor))))
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.degrees(2 * np.arcsin(np.minimum(1.0, s / c))) * MARGIN * factor
        n = np.where(c <= s, 1, np.floor(360.0 / width))
    return np.maximum(n, 1).astype(np.int64)


def cell_size_deg(r: float, lat: float, *, factor: float = 1.0) -> tuple[float, float]:
    """Cell height and width (degrees) in the latitude band that holds ``lat`` (degrees):
    points closer than r metres differ by under 1/factor of them (``band_lon_cells``)."""
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat must be in [-90, 90] degrees, got {lat}")
    height = lat_cell_deg(r, factor=factor)
    n = int(band_lon_cells(math.floor(lat / height), r, factor=factor))
    return height, 360.0 / n
