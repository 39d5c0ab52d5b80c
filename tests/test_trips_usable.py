"""One definition of a usable trip: every engine removes the same rows, counts them the same way,
and returns for the usable trips exactly what it returns without the unusable ones."""

import numpy as np
import pandas as pd
import pytest
from trips_helpers import as_pairs

from fieldnotes.trips.duck import return_trips_duckdb, usable_counts_duckdb
from fieldnotes.trips.join import METHODS, return_trips, scan_trips
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.session import spark_session, to_spark
from fieldnotes.trips.usable import PARSE_RULES, RULE_NAMES, first_broken_rule, removed_counts

# (column, value, rule expected to remove the row); each replaces one field of a real trip
BAD = [
    ("pickup_lat", np.nan, "missing_coordinate"),
    ("dropoff_lon", np.nan, "missing_coordinate"),
    ("dropoff_lat", np.inf, "infinite_coordinate"),
    ("pickup_lon", -np.inf, "infinite_coordinate"),
    ("pickup_lon", 0.0, "zero_coordinate"),
    ("dropoff_lat", 0.0, "zero_coordinate"),
    ("pickup_lat", 404.7, "latitude_out_of_range"),
    ("dropoff_lat", -90.5, "latitude_out_of_range"),
    ("dropoff_lon", 180.25, "longitude_out_of_range"),
    ("dropoff_time", pd.NaT, "missing_time"),
]


@pytest.fixture(scope="module")
def spark():
    return spark_session()


def with_bad_rows(trips: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``trips`` plus one copy of a random trip per BAD entry, that field replaced, new ids."""
    rng = np.random.default_rng(seed)
    rows = trips.iloc[rng.integers(0, len(trips), len(BAD))].copy().reset_index(drop=True)
    for i, (col, value, _) in enumerate(BAD):
        rows.loc[i, col] = value
    rows["trip_id"] = np.arange(len(BAD)) + int(trips["trip_id"].max()) + 1
    return pd.concat([trips, rows], ignore_index=True)


def expected_removed() -> dict[str, int]:
    want = dict.fromkeys(RULE_NAMES, 0)
    for *_, rule in BAD:
        want[rule] += 1
    return want


def test_every_engine_counts_the_same_rows(spark):
    trips, _ = planted_trips(20, 50.0, seed=1)
    dirty = with_bad_rows(trips, seed=2)
    want = expected_removed()
    assert removed_counts(first_broken_rule(dirty)) == want
    assert usable_counts_duckdb(dirty) == {**dict.fromkeys(PARSE_RULES, 0), **want}
    scan = scan_trips(to_spark(spark, dirty))
    assert scan.removed == want
    assert scan.rows == len(dirty) and scan.usable == len(trips)


def test_first_broken_rule_wins():
    trips, _ = planted_trips(1, 50.0, seed=0)
    row = trips.iloc[:1].assign(pickup_lat=np.nan, dropoff_lon=0.0, dropoff_lat=95.0)
    assert removed_counts(first_broken_rule(row))["missing_coordinate"] == 1
    assert sum(removed_counts(first_broken_rule(row)).values()) == 1


# latitudes (degrees) and longitudes where pairs are planted: NYC, southern, equatorial, far
# north, close to both poles (cells a few degrees of longitude wide, bands of one cell), the
# antimeridian
PLACES = [
    (40.75, -73.98),
    (-33.9, 151.2),
    (0.3, 32.6),
    (69.6, 18.9),
    (88.998, 10.0),
    (89.97, 40.0),
    (-89.995, -120.0),
    (-17.0, 179.999),
]


@pytest.mark.parametrize("lat, lon", PLACES)
def test_unusable_rows_change_no_pair(spark, lat, lon):
    r = 60.0
    trips, plan = planted_trips(400, r, seed=int(abs(lat) * 100), lat=lat, lon=lon, spread_m=6 * r)
    dirty = with_bad_rows(trips, seed=3)
    usable = dirty[first_broken_rule(dirty) < 0]
    want = as_pairs(return_trips_exact(usable, r))
    assert as_pairs(return_trips_exact(dirty, r)) == want
    assert len(want) > 20
    assert as_pairs(return_trips_duckdb(dirty, r)) == want
    sdf = to_spark(spark, dirty).cache()
    for method in METHODS[1:]:
        assert as_pairs(return_trips(sdf, r, method=method)) == want, method
    if lon > 179:  # pairs really straddle the antimeridian
        t = trips.set_index("trip_id")
        a, b = t.loc[plan["a_id"]], t.loc[plan["b_id"]]
        assert (np.sign(a.dropoff_lon.to_numpy()) != np.sign(b.pickup_lon.to_numpy())).sum() > 10
    sdf.unpersist()


def test_naive_ignores_unusable_rows(spark):
    trips, _ = planted_trips(150, 60.0, seed=4, lat=69.6, lon=18.9, spread_m=360)
    dirty = with_bad_rows(trips, seed=5)
    want = as_pairs(return_trips_exact(trips, 60.0))
    assert as_pairs(return_trips(to_spark(spark, dirty), 60.0, method="naive")) == want
