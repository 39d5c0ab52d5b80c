"""DuckDB's SQL returns exactly the oracle's pairs, from a frame and from a Parquet file."""

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.duck import (
    _source_sql,
    return_trips_duckdb,
    timed_duckdb,
    usable_counts_duckdb,
)
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


DATA = Path(__file__).parent / "data" / "trips"


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_duckdb_reads_int64_timestamps_in_every_unit(unit):
    path = DATA / f"int_times_{unit}.parquet"
    con = duckdb.connect()
    src = _source_sql(con, path)
    got = con.execute(
        f"SELECT epoch(pickup_time)::BIGINT, epoch(dropoff_time)::BIGINT FROM ({src})"
    )
    assert sorted(got.fetchall()) == [(s, s + 1200) for s in (1454313600, 1454321400, 1454324400)]
    assert return_trips_duckdb(path, 20.0).values.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match=r"int_times_unknown_unit.parquet, column .tpep_pickup"):
        return_trips_duckdb(DATA / "int_times_unknown_unit.parquet", 20.0)


def test_duckdb_counts_unparseable_strings(tmp_path):
    raw = pd.read_csv(DATA / "yellow_tripdata_2015-01_unparseable.csv", dtype=str)
    raw.to_parquet(tmp_path / "strings.parquet")  # every column a string, as some exports are
    counts = usable_counts_duckdb(tmp_path / "strings.parquet")
    assert counts["unparseable_coordinate"] == 2 and counts["unparseable_time"] == 1
    assert sum(counts.values()) == 3


@pytest.mark.parametrize(
    "plan",
    [
        {},
        {"trig": "candidate"},
        {"time_in_key": False},
        {"trig": "candidate", "time_in_key": False},
    ],
    ids=["default", "trig-per-candidate", "time-band-in-condition", "both"],
)
@pytest.mark.parametrize("seed,lat,lon", [(3, 40.75, -73.99), (4, -70.0, 179.999), (5, 88.0, 0.0)])
def test_every_measured_duckdb_plan_matches_oracle(plan, seed, lat, lon):
    trips, _ = planted_trips(500, 80.0, seed=seed, lat=lat, lon=lon, spread_m=800)
    want = return_trips_exact(trips, 80.0)
    assert len(want) > 20
    pd.testing.assert_frame_equal(return_trips_duckdb(trips, 80.0, **plan), want)
    with pytest.raises(ValueError, match="trig must be"):
        return_trips_duckdb(trips, 80.0, trig="degrees")


@pytest.mark.parametrize(
    "ids,message",
    [
        ([0, 1, 1, 3], r"repeats ids: id 1(\.0)? at rows \[1, 2\]"),
        ([0, None, 2, 3], r"is missing at rows \[1\]"),
        ([0, 1.5, 2, 3], r"is not a whole number at rows \[1\]"),
    ],
    ids=["repeated", "missing", "fractional"],
)
def test_duckdb_checks_the_ids_of_a_normalized_parquet_file(tmp_path, ids, message):
    trips, _ = planted_trips(4, 50, seed=0)
    trips = trips.head(4).assign(trip_id=pd.array(ids, dtype="Float64"))
    path = tmp_path / "norm.parquet"
    trips.to_parquet(path)
    with pytest.raises(ValueError, match=rf"norm.parquet: column trip_id {message}"):
        return_trips_duckdb(path, 50)
    with pytest.raises(ValueError, match="trip_id"):
        timed_duckdb(path, 50)


def test_duckdb_timer_splits_loading_from_the_query(monkeypatch):
    """A timer that put loading inside the query's seconds would fail here: loading is made
    slow on purpose, and only ``load_seconds`` may carry it."""
    import time as clock

    from fieldnotes.trips import duck

    trips, _ = planted_trips(300, 80.0, seed=7, spread_m=800)
    want = return_trips_exact(trips, 80.0)
    real_load = duck._load

    def slow_load(con, src):
        clock.sleep(1.0)
        return real_load(con, src)

    monkeypatch.setattr(duck, "_load", slow_load)
    run = timed_duckdb(trips, 80.0)
    assert run.pairs == len(want) >= 20
    assert run.load_seconds >= 1.0
    assert run.query_seconds < 0.9
    with pytest.raises(ValueError, match="trig must be"):
        timed_duckdb(trips, 80.0, trig="degrees")
