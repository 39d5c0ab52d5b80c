"""DuckDB's SQL returns exactly the oracle's pairs, from a frame and from a Parquet file."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.duck import return_trips_duckdb
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.synthetic import synthetic_trips


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.floats(20, 200), st.floats(-88.5, 88.5), st.floats(-180, 180))
def test_duckdb_matches_oracle_on_planted(seed, r, lat, lon):
    trips, _ = planted_trips(500, r, seed=seed, lat=lat, lon=lon, spread_m=10 * r)
    pd.testing.assert_frame_equal(return_trips_duckdb(trips, r), return_trips_exact(trips, r))


def test_duckdb_from_parquet(tmp_path):
    raw = synthetic_trips(30_000, seed=4, days=2)
    path = tmp_path / "trips.parquet"
    raw.to_parquet(path)
    norm = normalize_trips(raw)
    want = return_trips_exact(norm, 150)
    assert len(want) > 50
    pd.testing.assert_frame_equal(return_trips_duckdb(path, 150), want)
    norm.to_parquet(tmp_path / "norm.parquet")
    pd.testing.assert_frame_equal(return_trips_duckdb(tmp_path / "norm.parquet", 150), want)


def test_duckdb_rejects_bad_input(tmp_path):
    trips, _ = planted_trips(5, 50, seed=0)
    with pytest.raises(ValueError, match="r must be"):
        return_trips_duckdb(trips, 10_001)
    with pytest.raises(TypeError, match="trips must be"):
        return_trips_duckdb([1], 50)
    with pytest.raises(ValueError, match="does not exist"):
        return_trips_duckdb(tmp_path / "nope.parquet", 50)
