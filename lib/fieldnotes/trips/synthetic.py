"""NYC-like yellow-taxi trips in the 2016 TLC layout, generated day by day and deterministic per seed.

Demand is a mixture of (1) point places -- taxi stands, terminal curbs, station exits, hotel
doors -- where many trips start and end within a few metres, (2) smooth neighbourhood demand
(Gaussian blobs over Midtown, Downtown, Brooklyn, the airports) and (3) genuine return journeys
(someone goes somewhere and comes back a few hours later, picked up near where they were dropped).
The mixture weights are calibrated so that, at February-2016 volume, return-trip counts come within
a factor of 2 of the published counts for the real February 2016 file (see ``REAL_FEB2016``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fieldnotes.trips.geo import destination, haversine_m

REAL_FEB2016 = {20: 195_386, 90: 3_915_934, 150: 16_908_022}
"""Return-trip counts published by the TUM exercise for the real February 2016 yellow-taxi file."""

FEB2016_TRIPS = 11_382_049
"""Trips in the real February 2016 yellow-taxi file (29 days)."""

TLC2016_COLUMNS = [
    "VendorID",
    "tpep_pickup_datetime",
    "tpep_dropoff_datetime",
    "passenger_count",
    "trip_distance",
    "pickup_longitude",
    "pickup_latitude",
    "RatecodeID",
    "store_and_fwd_flag",
    "dropoff_longitude",
    "dropoff_latitude",
    "payment_type",
    "fare_amount",
    "total_amount",
]

# (name, lat, lon, weight, spread in metres): where yellow-taxi demand is.
HOTSPOTS = [
    ("Midtown", 40.7549, -73.9840, 14.0, 700.0),
    ("Times Square", 40.7580, -73.9855, 5.0, 300.0),
    ("Grand Central", 40.7527, -73.9772, 5.0, 250.0),
    ("Penn Station", 40.7506, -73.9935, 5.0, 250.0),
    ("Port Authority", 40.7570, -73.9903, 2.0, 200.0),
    ("Murray Hill", 40.7479, -73.9757, 5.0, 500.0),
    ("Upper East Side", 40.7736, -73.9566, 10.0, 900.0),
    ("Upper West Side", 40.7870, -73.9754, 7.0, 900.0),
    ("Columbus Circle", 40.7681, -73.9819, 3.0, 300.0),
    ("Chelsea", 40.7465, -74.0014, 6.0, 600.0),
    ("Union Square", 40.7359, -73.9911, 5.0, 450.0),
    ("Greenwich Village", 40.7336, -74.0027, 5.0, 500.0),
    ("East Village", 40.7265, -73.9815, 4.0, 500.0),
    ("SoHo", 40.7233, -74.0030, 3.0, 400.0),
    ("Lower East Side", 40.7150, -73.9843, 2.0, 450.0),
    ("Tribeca", 40.7163, -74.0086, 2.0, 400.0),
    ("Financial District", 40.7075, -74.0113, 3.0, 450.0),
    ("Harlem", 40.8116, -73.9465, 1.5, 1000.0),
    ("Williamsburg", 40.7081, -73.9571, 1.0, 900.0),
    ("Downtown Brooklyn", 40.6928, -73.9903, 1.0, 900.0),
    ("Long Island City", 40.7447, -73.9485, 0.7, 900.0),
    ("Astoria", 40.7644, -73.9235, 0.5, 1000.0),
    ("JFK", 40.6441, -73.7822, 2.5, 600.0),
    ("LaGuardia", 40.7730, -73.8702, 2.5, 400.0),
]

# Share of trips starting in each hour of the day (yellow taxis, weekday-weekend mix).
HOURLY = np.array(
    [
        3.7,
        2.7,
        2.0,
        1.4,
        1.1,
        1.0,
        2.1,
        3.6,
        4.3,
        4.3,
        4.2,
        4.4,
        4.7,
        4.7,
        4.9,
        4.8,
        4.3,
        5.2,
        6.1,
        6.1,
        5.8,
        5.7,
        5.4,
        4.6,
    ]
)
# Typical door-to-door speed by hour of day, km/h.
SPEED_KMH = np.array(
    [24, 26, 27, 28, 29, 27, 22, 16, 13, 13, 14, 14, 14, 14, 14, 13, 13, 12, 13, 14, 16, 18, 20, 22]
)


@dataclass(frozen=True)
class DemandConfig:
    """Knobs of the demand model (shares are fractions of trip ends or trips; spreads in metres)."""

    n_places: int = 20000
    place_zipf: float = 0.9
    point_share: float = 0.20
    gps_noise_m: float = 8.0
    return_share: float = 0.12
    return_walk_m: tuple[float, float] = (10.0, 400.0)
    return_gap_median_h: float = 3.0


def _places(seed: int, cfg: DemandConfig):
    """Fixed point places (lat, lon in degrees) and their Zipf weights for one generator seed."""
    rng = np.random.default_rng([seed, 7])
    lat, lon, _ = _blob_points(rng, cfg.n_places)
    w = 1.0 / np.arange(1, cfg.n_places + 1) ** cfg.place_zipf
    return lat, lon, w / w.sum()


def _blob_points(rng, n):
    """n points drawn from the smooth hotspot mixture (degrees) and their hotspot index."""
    wts = np.array([h[3] for h in HOTSPOTS])
    k = rng.choice(len(HOTSPOTS), size=n, p=wts / wts.sum())
    lat0 = np.array([h[1] for h in HOTSPOTS])[k]
    lon0 = np.array([h[2] for h in HOTSPOTS])[k]
    sd = np.array([h[4] for h in HOTSPOTS])[k]
    dn = rng.normal(0, 1, n) * sd
    de = rng.normal(0, 1, n) * sd
    lat = lat0 + np.degrees(dn / 6_371_000.0)
    lon = lon0 + np.degrees(de / (6_371_000.0 * np.cos(np.radians(lat0))))
    return lat, lon, k


def _trip_ends(rng, n, places, cfg: DemandConfig):
    """n trip-end coordinates: a point place (plus GPS noise) or smooth neighbourhood demand."""
    plat, plon, pw = places
    lat, lon, _ = _blob_points(rng, n)
    at_place = rng.random(n) < cfg.point_share
    m = int(at_place.sum())
    idx = rng.choice(len(pw), size=m, p=pw)
    bearing = rng.uniform(0, 360, m)
    dist = np.abs(rng.normal(0, cfg.gps_noise_m, m)) * np.sqrt(2)
    la, lo = destination(plat[idx], plon[idx], bearing, dist)
    lat[at_place], lon[at_place] = la, lo
    return lat, lon


def _durations(rng, plat, plon, dlat, dlon, hour):
    """Trip duration (s) and metered distance (miles) from straight-line distance and city speed."""
    straight = haversine_m(plat, plon, dlat, dlon)
    route = 1.35 * straight + 250.0
    speed = SPEED_KMH[hour] / 3.6 * rng.lognormal(0, 0.2, len(hour))
    dur = np.round(route / speed + 45.0 + rng.exponential(30.0, len(hour))).astype(np.int64)
    miles = np.round(route * rng.lognormal(0, 0.05, len(hour)) / 1609.344, 2)
    return dur, miles


def _day(n: int, day_start: np.datetime64, rng, places, cfg: DemandConfig) -> pd.DataFrame:
    """One day of trips (n rows, in no particular order)."""
    n_ret = int(round(n * cfg.return_share / (1 + cfg.return_share)))
    n_base = n - n_ret
    hour = rng.choice(24, size=n_base, p=HOURLY / HOURLY.sum())
    t0 = hour.astype(np.int64) * 3600 + rng.integers(0, 3600, n_base)
    plat, plon = _trip_ends(rng, n_base, places, cfg)
    dlat, dlon = _trip_ends(rng, n_base, places, cfg)
    dur, miles = _durations(rng, plat, plon, dlat, dlon, hour)
    t1 = t0 + dur
    # genuine return journeys: picked up near the drop-off, dropped near the origin, hours later
    src = rng.choice(n_base, size=n_ret, replace=False) if n_ret else np.zeros(0, np.int64)
    lo_w, hi_w = np.log(cfg.return_walk_m[0]), np.log(cfg.return_walk_m[1])
    walk1 = np.exp(rng.uniform(lo_w, hi_w, n_ret)) * np.abs(rng.normal(0, 1, n_ret))
    walk2 = np.exp(rng.uniform(lo_w, hi_w, n_ret)) * np.abs(rng.normal(0, 1, n_ret))
    rp_lat, rp_lon = destination(dlat[src], dlon[src], rng.uniform(0, 360, n_ret), walk1)
    rd_lat, rd_lon = destination(plat[src], plon[src], rng.uniform(0, 360, n_ret), walk2)
    gap = np.round(rng.lognormal(np.log(cfg.return_gap_median_h * 3600), 0.8, n_ret) + 60).astype(
        np.int64
    )
    rt0 = t1[src] + gap
    rhour = (rt0 // 3600) % 24
    rdur, rmiles = _durations(rng, rp_lat, rp_lon, rd_lat, rd_lon, rhour)
    t_start = np.concatenate([t0, rt0])
    t_end = np.concatenate([t1, rt0 + rdur])
    plat, plon = np.concatenate([plat, rp_lat]), np.concatenate([plon, rp_lon])
    dlat, dlon = np.concatenate([dlat, rd_lat]), np.concatenate([dlon, rd_lon])
    miles = np.concatenate([miles, rmiles])
    minutes = (t_end - t_start) / 60.0
    fare = np.round((2.5 + 2.5 * miles + 0.15 * minutes) * 2) / 2
    jfk = haversine_m(dlat, dlon, 40.6441, -73.7822) < 3000
    fare = np.where(jfk, 52.0, fare)
    base = day_start.astype("datetime64[s]")
    return pd.DataFrame(
        {
            "VendorID": rng.choice([1, 2], size=n, p=[0.47, 0.53]).astype(np.int64),
            "tpep_pickup_datetime": base + t_start.astype("timedelta64[s]"),
            "tpep_dropoff_datetime": base + t_end.astype("timedelta64[s]"),
            "passenger_count": rng.choice(
                [1, 2, 3, 4, 5, 6], size=n, p=[0.70, 0.14, 0.04, 0.02, 0.06, 0.04]
            ).astype(np.int64),
            "trip_distance": miles,
            "pickup_longitude": plon,
            "pickup_latitude": plat,
            "RatecodeID": np.where(jfk, 2, 1).astype(np.int64),
            "store_and_fwd_flag": np.where(rng.random(n) < 0.005, "Y", "N"),
            "dropoff_longitude": dlon,
            "dropoff_latitude": dlat,
            "payment_type": rng.choice([1, 2], size=n, p=[0.64, 0.36]).astype(np.int64),
            "fare_amount": fare,
            "total_amount": np.round(fare * 1.18 + 0.8, 2),
        },
        columns=TLC2016_COLUMNS,
    )


def _split(n: int, days: int) -> list[int]:
    """Split n trips over days as evenly as integers allow."""
    q, rem = divmod(n, days)
    return [q + (1 if d < rem else 0) for d in range(days)]


def _check(n, seed, days, start):
    """Validate generator arguments."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative int (trips), got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ValueError(f"days must be a positive int, got {days!r}")
    try:
        if isinstance(start, str):
            return np.datetime64(np.datetime64(start, "D"), "s")
        return np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "s")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"start must be a date such as '2016-02-01', got {start!r}") from exc


def iter_synthetic_days(
    n: int, *, seed: int, start: str = "2016-02-01", days: int = 29, cfg: DemandConfig | None = None
):
    """Yield one DataFrame of trips per day (the rows of ``synthetic_trips``, in bounded memory)."""
    t0 = _check(n, seed, days, start)
    return _days(int(n), int(seed), t0, int(days), cfg or DemandConfig())


def _days(n, seed, t0, days, cfg):
    """The generator behind ``iter_synthetic_days`` (arguments already checked)."""
    places = _places(int(seed), cfg)
    for d, n_day in enumerate(_split(int(n), int(days))):
        rng = np.random.default_rng([int(seed), 11, d])
        df = _day(n_day, t0 + np.timedelta64(d, "D"), rng, places, cfg)
        yield df.sort_values("tpep_pickup_datetime", kind="stable").reset_index(drop=True)


def synthetic_trips(
    n: int, *, seed: int, start: str = "2016-02-01", days: int = 29, cfg: DemandConfig | None = None
) -> pd.DataFrame:
    """n NYC-like yellow-taxi trips over ``days`` days from ``start``, in the 2016 TLC layout."""
    parts = list(iter_synthetic_days(n, seed=seed, start=start, days=days, cfg=cfg))
    if not parts:
        return pd.DataFrame(columns=TLC2016_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def write_synthetic_parquet(
    path,
    n: int,
    *,
    seed: int,
    start: str = "2016-02-01",
    days: int = 29,
    row_group_size: int = 250_000,
    cfg: DemandConfig | None = None,
) -> Path:
    """Write ``synthetic_trips(n, ...)`` to one Parquet file a day at a time; return the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for df in iter_synthetic_days(n, seed=seed, start=start, days=days, cfg=cfg):
            table = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=row_group_size)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError(f"n must be positive to write a file, got {n}")
    return path
