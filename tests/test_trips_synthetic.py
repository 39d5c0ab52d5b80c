"""The generator: layout, determinism, realism, and the calibration against the real February."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.geo import haversine_m
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.synthetic import (
    FEB2016_TRIPS,
    REAL_FEB2016,
    TLC2016_COLUMNS,
    synthetic_trips,
    write_synthetic_parquet,
)


def test_layout_and_determinism():
    a = synthetic_trips(5000, seed=3, days=2)
    b = synthetic_trips(5000, seed=3, days=2)
    c = synthetic_trips(5000, seed=4, days=2)
    assert list(a.columns) == TLC2016_COLUMNS and len(a) == 5000
    assert a.equals(b) and not a.equals(c)
    assert (a.tpep_dropoff_datetime > a.tpep_pickup_datetime).all()
    assert a.tpep_pickup_datetime.min() >= np.datetime64("2016-02-01")


def test_realistic_values():
    t = synthetic_trips(40_000, seed=1, days=2)
    mins = (t.tpep_dropoff_datetime - t.tpep_pickup_datetime).dt.total_seconds() / 60
    assert 8 < mins.median() < 20  # NYC yellow-taxi median is about 11-13 minutes
    assert 1.0 < t.trip_distance.median() < 3.0  # about 1.6-1.8 miles in 2016
    speed = t.trip_distance / (mins / 60)
    assert 6 < speed.median() < 20  # mph
    # the evening peak is busier than the small hours
    hours = t.tpep_pickup_datetime.dt.hour
    assert (hours == 19).sum() > 3 * (hours == 4).sum()
    # demand is concentrated: most pick-ups within 8 km of Midtown
    d = haversine_m(t.pickup_latitude, t.pickup_longitude, 40.7549, -73.9840)
    assert (d < 8000).mean() > 0.8


def test_calibrated_against_real_february_2016():
    # one day at February-2016 daily volume: counts within 2x of the real counts / 29
    n = FEB2016_TRIPS // 29
    trips = normalize_trips(synthetic_trips(n, seed=2016, days=1))
    for r, real in REAL_FEB2016.items():
        got = len(return_trips_exact(trips, r))
        assert real / 29 / 2 < got < 2 * real / 29, (r, got, real / 29)


def test_parquet_writer_matches_memory(tmp_path):
    path = write_synthetic_parquet(tmp_path / "t.parquet", 3000, seed=9, days=3, row_group_size=500)
    f = pq.ParquetFile(path)
    assert f.metadata.num_rows == 3000 and f.metadata.num_row_groups >= 6
    back = f.read().to_pandas()
    mem = synthetic_trips(3000, seed=9, days=3)
    assert (back.pickup_latitude.to_numpy() == mem.pickup_latitude.to_numpy()).all()
    assert (back.tpep_pickup_datetime.to_numpy() == mem.tpep_pickup_datetime.to_numpy()).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        synthetic_trips(-1, seed=0)
    with pytest.raises(ValueError, match="seed must be"):
        synthetic_trips(10, seed=-3)
    with pytest.raises(ValueError, match="days must be"):
        synthetic_trips(10, seed=0, days=0)
    with pytest.raises(ValueError, match="start must be"):
        synthetic_trips(10, seed=0, start="February")
