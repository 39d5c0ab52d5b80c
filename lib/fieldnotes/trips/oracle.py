"""An exact single-machine oracle: 8-hour time blocks, then a 6-D KD-tree over both trip ends."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldnotes.trips.columns import check_normalized, micros
from fieldnotes.trips.geo import EARTH_RADIUS_M, EIGHT_HOURS_S, check_radius, haversine_m
from fieldnotes.trips.usable import first_broken_rule


def _unit(lat, lon):
    """Points on the unit sphere (x, y, z) from degrees."""
    p, lmb = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(p) * np.cos(lmb), np.cos(p) * np.sin(lmb), np.sin(p)])


def _pairs_within(trips: pd.DataFrame, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a ids, b ids, the larger of the pair's two end distances in metres) of every return-trip
    pair within r metres, unsorted (``return_trips_exact`` describes the search)."""
    from scipy.spatial import cKDTree

    r = check_radius(r)
    check_normalized(trips)
    ids = trips["trip_id"].to_numpy(np.int64)
    t_pick = micros(trips["pickup_time"])
    t_drop = micros(trips["dropoff_time"])
    plat, plon = trips["pickup_lat"].to_numpy(float), trips["pickup_lon"].to_numpy(float)
    dlat, dlon = trips["dropoff_lat"].to_numpy(float), trips["dropoff_lon"].to_numpy(float)
    ok = first_broken_rule(trips) < 0
    plat, plon, dlat, dlon = (np.where(ok, v, 0.0) for v in (plat, plon, dlat, dlon))
    a_key = np.hstack([_unit(dlat, dlon), _unit(plat, plon)])  # a: (drop-off, pick-up)
    b_key = np.hstack([_unit(plat, plon), _unit(dlat, dlon)])  # b: (pick-up, drop-off)
    chord = 2 * np.sin(r / (2 * EARTH_RADIUS_M))
    radius = np.sqrt(2) * chord * (1 + 1e-9) + 1e-12
    win = EIGHT_HOURS_S * 1_000_000
    a_blk = np.where(ok, np.floor_divide(t_drop, win), np.iinfo(np.int64).min)
    b_blk = np.where(ok, np.floor_divide(t_pick, win), np.iinfo(np.int64).min)
    out_a, out_b, out_d = [], [], []
    order_b = np.argsort(b_blk, kind="stable")
    sorted_b = b_blk[order_b]
    for blk in np.unique(a_blk[ok]):
        ia = np.flatnonzero(a_blk == blk)
        lo, hi = np.searchsorted(sorted_b, [blk, blk + 2])
        ib = order_b[lo:hi]
        if len(ib) == 0:
            continue
        ta, tb = cKDTree(a_key[ia]), cKDTree(b_key[ib])
        pairs = ta.sparse_distance_matrix(tb, radius, output_type="ndarray")
        if len(pairs) == 0:
            continue
        ga, gb = ia[pairs["i"]], ib[pairs["j"]]
        keep = (t_drop[ga] < t_pick[gb]) & (t_pick[gb] < t_drop[ga] + win) & (ids[ga] != ids[gb])
        ga, gb = ga[keep], gb[keep]
        d = np.maximum(
            haversine_m(dlat[ga], dlon[ga], plat[gb], plon[gb]),
            haversine_m(dlat[gb], dlon[gb], plat[ga], plon[ga]),
        )
        keep = d < r
        out_a.append(ids[ga[keep]])
        out_b.append(ids[gb[keep]])
        out_d.append(d[keep])
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_d)


def return_trips_exact(trips: pd.DataFrame, r: float) -> pd.DataFrame:
    """All (a_id, b_id) with b a return trip of a within r metres, sorted; exact, independent of grids.

    Trips are processed in 8-hour blocks of drop-off time; the candidates for a block are the
    pick-ups in that block and the next. Each trip is a point in 6-D (both ends on the unit sphere);
    a pair with both ends within r has 6-D distance < sqrt(2) * chord(r), so a KD-tree ball query
    finds a superset, which the exact haversine and strict time tests then reduce. Only usable
    trips (``fieldnotes.trips.usable``) take part; the sphere needs no antimeridian special case.
    """
    a, b, _ = _pairs_within(trips, r)
    res = pd.DataFrame({"a_id": a, "b_id": b})
    return res.sort_values(["a_id", "b_id"], kind="stable").reset_index(drop=True)


def return_trip_distances(trips: pd.DataFrame, r: float) -> pd.DataFrame:
    """Every return-trip pair within r metres (a_id, b_id) with ``distance_m``, the larger of its
    two end distances (metres), sorted by a_id, b_id: the pairs within any smaller radius r' are
    the rows with distance_m < r', exactly ``return_trips_exact(trips, r')``."""
    a, b, d = _pairs_within(trips, r)
    res = pd.DataFrame({"a_id": a, "b_id": b, "distance_m": d})
    return res.sort_values(["a_id", "b_id"], kind="stable").reset_index(drop=True)
