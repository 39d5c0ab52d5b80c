"""H3 hexagons as bucketing: wide enough at the chosen resolution to find every pair, not at a
finer one, and their candidate counts are what an equi-join would pair."""

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.geo import destination, haversine_m
from fieldnotes.trips.hexcells import h3_resolution, hex_candidates
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.synthetic import synthetic_trips


def test_resolution_gets_coarser_with_the_radius():
    trips = normalize_trips(synthetic_trips(2_000, seed=5, days=1))
    res = [h3_resolution(r, trips) for r in (5.0, 20.0, 90.0, 150.0, 1000.0)]
    assert res == sorted(res, reverse=True)
    assert h3_resolution(90.0, trips) == 9


def _vertex_pair(r: float, res: int, lat: float, lon: float) -> pd.DataFrame:
    """Two trips: a drops off at a vertex of its resolution-``res`` cell; b picks up r - 1 mm
    away on the first whole-degree bearing that leaves a's one ring (or due north), 30 minutes
    later, and drops off where a picked up."""
    import h3

    cell = h3.latlng_to_cell(lat, lon, res)
    vlat, vlon = h3.vertex_to_latlng(h3.cell_to_vertexes(cell)[0])
    start = h3.latlng_to_cell(vlat, vlon, res)
    ring = set(h3.grid_disk(start, 1))
    bearings = np.arange(360.0)
    plat, plon = destination(np.full(360, vlat), np.full(360, vlon), bearings, r - 1e-3)
    out = [k for k in range(360) if h3.latlng_to_cell(plat[k], plon[k], res) not in ring]
    k = out[0] if out else 0
    t = pd.Timestamp("2016-02-10 10:00")
    return normalize_trips(
        pd.DataFrame(
            {
                "trip_id": np.array([0, 1], dtype=np.int64),
                "pickup_time": [t - pd.Timedelta(minutes=20), t + pd.Timedelta(minutes=30)],
                "dropoff_time": [t, t + pd.Timedelta(minutes=50)],
                "pickup_lat": [lat, plat[k]],
                "pickup_lon": [lon, plon[k]],
                "dropoff_lat": [vlat, lat],
                "dropoff_lon": [vlon, lon],
            }
        )
    )


def test_a_partner_of_a_vertex_point_is_found():
    import h3

    r, lat, lon = 100.0, 40.75, -73.99
    # resolution 10 here: edges of about 76 m, hexagons about 131 m across their flats (> r)
    assert 76.5 < r < np.sqrt(3) * h3.average_hexagon_edge_length(10, unit="m")
    trips = _vertex_pair(r, 10, lat, lon)
    d = haversine_m(
        *trips.loc[0, ["dropoff_lat", "dropoff_lon"]], *trips.loc[1, ["pickup_lat", "pickup_lon"]]
    )
    assert r - 2e-3 < d < r
    assert len(return_trips_exact(trips, r)) == 1
    assert hex_candidates(trips, r, 10)["both_ends_pairs"] == 0  # flats wide enough, ring is not
    res = h3_resolution(r, trips)
    assert res < 10
    assert hex_candidates(trips, r)["both_ends_pairs"] == 1


@pytest.mark.parametrize(
    "r,lat,lon", [(100.0, 40.75, -73.99), (60.0, 64.1, -21.9), (300.0, -33.9, 151.2)]
)
def test_every_point_r_from_a_vertex_stays_in_the_ring(r, lat, lon):
    import h3

    trips = _vertex_pair(r, 12, lat, lon)
    res = h3_resolution(r, trips)
    for v in h3.cell_to_vertexes(h3.latlng_to_cell(lat, lon, res)):
        vlat, vlon = h3.vertex_to_latlng(v)
        ring = set(h3.grid_disk(h3.latlng_to_cell(vlat, vlon, res), 1))
        plat, plon = destination(np.full(360, vlat), np.full(360, vlon), np.arange(360.0), r - 1e-3)
        assert all(h3.latlng_to_cell(a, b, res) in ring for a, b in zip(plat, plon, strict=True))


def test_pentagon_neighbourhood_is_refused():
    import h3

    lat, lon = h3.cell_to_latlng(sorted(h3.get_pentagons(9))[0])
    trips = _vertex_pair(50.0, 9, lat, lon)
    with pytest.raises(ValueError, match="pentagon"):
        h3_resolution(50.0, trips)


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
    assert hex_candidates(trips, 90.0, h3_resolution(90.0, trips) + 2)["both_ends_pairs"] < want


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
