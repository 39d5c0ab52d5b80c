"""Planted boundary data: distances and gaps are exactly where the plan says."""

import numpy as np

from fieldnotes.trips.geo import haversine_m
from fieldnotes.trips.planted import GAPS_S, planted_trips


def test_planted_geometry():
    r = 75.0
    trips, plan = planted_trips(400, r, seed=5)
    t = trips.set_index("trip_id")
    a, b = t.loc[plan["a_id"]], t.loc[plan["b_id"]]
    d1 = (
        haversine_m(
            a.dropoff_lat.values, a.dropoff_lon.values, b.pickup_lat.values, b.pickup_lon.values
        )
        / r
    )
    d2 = (
        haversine_m(
            b.dropoff_lat.values, b.dropoff_lon.values, a.pickup_lat.values, a.pickup_lon.values
        )
        / r
    )
    assert np.allclose(np.minimum(abs(d1 - 0.99), abs(d1 - 1.01)), 0, atol=1e-9)
    assert np.allclose(np.minimum(abs(d2 - 0.99), abs(d2 - 1.01)), 0, atol=1e-9)
    gap = (b.pickup_time.values - a.dropoff_time.values) / np.timedelta64(1, "s")
    assert set(gap.astype(int)) == set(GAPS_S)
    assert (
        plan["expected"].to_numpy().tolist()
        == ((d1 < 1) & (d2 < 1) & (gap > 0) & (gap < 8 * 3600)).tolist()
    )
    assert trips["trip_id"].is_unique and len(trips) == 800
