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


def return_trips_exact(trips: pd.DataFrame, r: float) -> pd.DataFrame:
    """All (a_id, b_id) with b a return trip of a within r metres, sorted; exact, independent of grids.

    Trips are processed in 8-hour blocks of drop-off time; the candidates for a block are the
    pick-ups in that block and the next. Each trip is a point in 6-D (both ends on the unit sphere);
    a pair with both ends within r has 6-D distance < sqrt(2) * chord(r), so a KD-tree ball query
    finds a superset, which the exact haversine and strict time tests then reduce. Only usable
    trips (``fieldnotes.trips.usable``) take part; the sphere needs no antimeridian special case.
    """
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
    out_a, out_b = [], []
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
        keep = (t_drop[ga] < t_pick[gb]) & (t_pick[gb] < t_drop[ga] + win) & (ga != gb)
        ga, gb = ga[keep], gb[keep]
        keep = (haversine_m(dlat[ga], dlon[ga], plat[gb], plon[gb]) < r) & (
            haversine_m(dlat[gb], dlon[gb], plat[ga], plon[ga]) < r
        )
        out_a.append(ids[ga[keep]])
        out_b.append(ids[gb[keep]])
    a = np.concatenate(out_a) if out_a else np.zeros(0, np.int64)
    b = np.concatenate(out_b) if out_b else np.zeros(0, np.int64)
    res = pd.DataFrame({"a_id": a, "b_id": b})
    return res.sort_values(["a_id", "b_id"], kind="stable").reset_index(drop=True)
