"""The oracle against brute force and against the planted plan."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.trips.geo import haversine_m
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips


def brute(trips, r):
    """All pairs, definition applied literally (O(n^2))."""
    t = trips
    tp = t.pickup_time.values.astype("datetime64[us]").astype(np.int64)
    td = t.dropoff_time.values.astype("datetime64[us]").astype(np.int64)
    ids = t.trip_id.values
    out = []
    for i in range(len(t)):
        d1 = haversine_m(
            t.dropoff_lat.values[i],
            t.dropoff_lon.values[i],
            t.pickup_lat.values,
            t.pickup_lon.values,
        )
        d2 = haversine_m(
            t.dropoff_lat.values,
            t.dropoff_lon.values,
            t.pickup_lat.values[i],
            t.pickup_lon.values[i],
        )
        ok = (d1 < r) & (d2 < r) & (td[i] < tp) & (tp < td[i] + 8 * 3600 * 10**6)
        ok[i] = False
        out += [(ids[i], ids[j]) for j in np.flatnonzero(ok)]
    return sorted(out)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.floats(20, 200))
def test_oracle_matches_brute_force(seed, r):
    trips, _ = planted_trips(150, r, seed=seed, spread_m=3 * r)
    got = return_trips_exact(trips, r)
    assert list(zip(got.a_id, got.b_id, strict=True)) == brute(trips, r)


def test_oracle_agrees_with_plan():
    trips, plan = planted_trips(3000, 120.0, seed=2)
    got = return_trips_exact(trips, 120.0)
    found = set(zip(got.a_id, got.b_id, strict=True))
    hit = np.array([(a, b) in found for a, b in zip(plan.a_id, plan.b_id, strict=True)])
    assert (hit == plan["expected"].to_numpy()).all()
    assert plan["expected"].sum() > 100


def test_oracle_edge_cases():
    empty = planted_trips(1, 50, seed=0)[0].iloc[:0]
    assert len(return_trips_exact(empty, 50)) == 0
    trips, _ = planted_trips(10, 50, seed=0)
    with pytest.raises(ValueError, match="r must be"):
        return_trips_exact(trips, 0)
    with pytest.raises(ValueError, match="pickup_lat"):
        return_trips_exact(trips.drop(columns="pickup_lat"), 50)
    # tz-aware UTC times give the same answer as naive ones
    aware = trips.assign(
        pickup_time=trips.pickup_time.dt.tz_localize("UTC"),
        dropoff_time=trips.dropoff_time.dt.tz_localize("UTC"),
    )
    pd.testing.assert_frame_equal(return_trips_exact(aware, 50), return_trips_exact(trips, 50))


def _with_ids(ids) -> pd.DataFrame:
    """Planted trips (a found return pair among them) with their trip_id column replaced."""
    trips, _ = planted_trips(30, 50.0, seed=9)
    return trips.assign(trip_id=pd.array(ids, dtype="Int64"))


@pytest.mark.parametrize(
    "ids,match",
    [
        ([*range(59), 7], r"trip_id repeats ids \(2 rows\): id 7 at rows \[7, 59\]"),
        ([*range(12), None, *range(13, 60)], r"trip_id is missing at rows \[12\]"),
    ],
)
def test_repeated_or_missing_ids_are_refused_by_every_engine(ids, match):
    from fieldnotes.trips import return_trips_duckdb
    from fieldnotes.trips.columns import normalize_trips

    trips = _with_ids(ids)
    for engine in (return_trips_exact, return_trips_duckdb):
        with pytest.raises(ValueError, match=match):
            engine(trips, 50.0)
    with pytest.raises(ValueError, match=match):
        normalize_trips(trips)


def test_oracle_excludes_self_pairs_by_id_not_row():
    # one trip listed twice under the same id is still one trip: never a return of itself
    trips, _ = planted_trips(30, 50.0, seed=9)
    base = return_trips_exact(trips, 50.0)
    twice = pd.concat([trips, trips.iloc[[0]].assign(trip_id=10_000)], ignore_index=True)
    got = return_trips_exact(twice, 50.0)
    assert not (got["a_id"] == got["b_id"]).any()
    assert len(got[(got["a_id"] < 10_000) & (got["b_id"] < 10_000)]) == len(base)


def test_oracle_distance_bound_is_strict():
    # planted pairs 1 µm inside and outside r, then r set exactly at a found pair's distance
    trips, plan = planted_trips(300, 60.0, seed=11)
    got = return_trips_exact(trips, 60.0).merge(plan, on=["a_id", "b_id"])
    assert got["expected"].all() and len(got) == plan["expected"].sum()
    from fieldnotes.trips.oracle import return_trip_distances

    far = return_trip_distances(trips, 60.0)
    edge = far.loc[far["distance_m"] > 60.0 - 1e-5].iloc[0]
    d = float(edge["distance_m"])
    pair = (int(edge["a_id"]), int(edge["b_id"]))
    at = set(return_trips_exact(trips, d).itertuples(index=False, name=None))
    above = set(
        return_trips_exact(trips, float(np.nextafter(d, np.inf))).itertuples(index=False, name=None)
    )
    assert pair not in at and pair in above
