"""Planted boundary data: distances and gaps are exactly where the plan says."""

import numpy as np

from fieldnotes.trips.geo import haversine_m
from fieldnotes.trips.planted import EDGE_M, GAPS_S, planted_trips


def test_planted_geometry():
    r = 75.0
    trips, plan = planted_trips(400, r, seed=5)
    t = trips.set_index("trip_id")
    a, b = t.loc[plan["a_id"]], t.loc[plan["b_id"]]
    d1 = haversine_m(
        a.dropoff_lat.values, a.dropoff_lon.values, b.pickup_lat.values, b.pickup_lon.values
    )
    d2 = haversine_m(
        b.dropoff_lat.values, b.dropoff_lon.values, a.pickup_lat.values, a.pickup_lon.values
    )
    planned = np.array([0.99 * r, 1.01 * r, r - EDGE_M, r + EDGE_M])
    for d in (d1, d2):
        off = np.abs(d[:, None] - planned[None, :]).min(axis=1)
        assert (off < 1e-8).all()  # metres (coordinate rounding): far below the 1 µm offsets
        near = np.abs(d - r) < 1e-5
        assert 0 < near.sum() < len(d)
        assert ((d[near] < r) == (d[near] < r - EDGE_M / 2)).all()  # inner ones are inside
    gap = (b.pickup_time.values - a.dropoff_time.values) / np.timedelta64(1, "s")
    assert set(gap.astype(int)) == set(GAPS_S)
    assert (
        plan["expected"].to_numpy().tolist()
        == ((d1 < r) & (d2 < r) & (gap > 0) & (gap < 8 * 3600)).tolist()
    )
    assert trips["trip_id"].is_unique and len(trips) == 800
