"""H3 hexagons as bucketing: wide enough at the chosen resolution to find every pair, not at a
finer one, and their candidate counts are what an equi-join would pair."""

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.hexcells import h3_resolution, hex_candidates
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.synthetic import synthetic_trips


def test_resolution_gets_coarser_with_the_radius():
    res = [h3_resolution(r) for r in (5.0, 20.0, 90.0, 150.0, 1000.0)]
    assert res == sorted(res, reverse=True)
    assert h3_resolution(90.0) == 9


@pytest.mark.parametrize("lat,lon", [(40.75, -73.99), (-33.9, 151.2), (64.1, -21.9)])
def test_both_ends_finds_every_pair_at_the_chosen_resolution(lat, lon):
    r = 80.0
    trips, _ = planted_trips(400, r, seed=3, lat=lat, lon=lon, spread_m=600)
    want = len(return_trips_exact(trips, r))
    got = hex_candidates(trips, r)
    assert want > 20
    assert got["both_ends_pairs"] == want
    assert got["one_end"] >= got["both_ends"] >= want


def test_a_finer_resolution_misses_pairs_on_taxi_data():
    trips = normalize_trips(synthetic_trips(40_000, seed=4, days=1))
    want = len(return_trips_exact(trips, 90.0))
    assert hex_candidates(trips, 90.0)["both_ends_pairs"] == want
    assert hex_candidates(trips, 90.0, h3_resolution(90.0) + 2)["both_ends_pairs"] < want


def test_one_end_count_is_rows_times_rows():
    import h3

    trips = normalize_trips(synthetic_trips(800, seed=2, days=1))
    res = 8
    cell = lambda la, lo: h3.latlng_to_cell(la, lo, res)  # noqa: E731
    a_keys = {}
    for t in trips.itertuples():
        bucket = int(t.dropoff_time.value // 1000 // (8 * 3600 * 1_000_000))
        for c in h3.grid_disk(cell(t.dropoff_lat, t.dropoff_lon), 1):
            for dt in (0, 1):
                a_keys[(c, bucket + dt)] = a_keys.get((c, bucket + dt), 0) + 1
    b_keys = pd.Series(
        [
            (
                cell(t.pickup_lat, t.pickup_lon),
                int(t.pickup_time.value // 1000 // (8 * 3600 * 1_000_000)),
            )
            for t in trips.itertuples()
        ]
    ).value_counts()
    want = sum(a_keys.get(k, 0) * int(n) for k, n in b_keys.items())
    assert hex_candidates(trips, 90.0, res)["one_end"] == want


def test_bad_resolution():
    trips, _ = planted_trips(20, 50.0, seed=1)
    with pytest.raises(ValueError, match="res must be"):
        hex_candidates(trips, 50.0, 16)
    assert np.isfinite(hex_candidates(trips, 50.0)["one_end"])
