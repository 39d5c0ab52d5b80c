"""Loader tests on small files in the real TLC layouts, dirty rows included."""

from pathlib import Path

import pytest

from fieldnotes.trips.join import return_trips
from fieldnotes.trips.session import spark_session
from fieldnotes.trips.tlc import read_tlc

DATA = Path(__file__).parent / "data" / "trips"


@pytest.fixture(scope="module")
def spark():
    return spark_session()


@pytest.mark.parametrize(
    "name, strict, read, removed",
    [
        (
            "yellow_tripdata_2015-01_sample.csv",
            False,
            12,
            {"missing_time": 0, "zero_or_missing_coordinate": 3},
        ),
        (
            "yellow_tripdata_2015-01_sample.csv",
            True,
            12,
            {
                "missing_time": 0,
                "zero_or_missing_coordinate": 3,
                "outside_nyc": 1,
                "dropoff_not_after_pickup": 1,
            },
        ),
        (
            "yellow_tripdata_2016-02_sample.csv",
            False,
            10,
            {"missing_time": 1, "zero_or_missing_coordinate": 1},
        ),
        (
            "yellow_tripdata_2016-02_sample.csv",
            True,
            10,
            {
                "missing_time": 1,
                "zero_or_missing_coordinate": 1,
                "outside_nyc": 1,
                "dropoff_not_after_pickup": 1,
            },
        ),
        (
            "yellow_tripdata_2009-01_sample.parquet",
            False,
            8,
            {"missing_time": 0, "zero_or_missing_coordinate": 2},
        ),
        (
            "yellow_tripdata_2014-01_sample.csv",
            True,
            3,
            {
                "missing_time": 0,
                "zero_or_missing_coordinate": 1,
                "outside_nyc": 0,
                "dropoff_not_after_pickup": 0,
            },
        ),
    ],
)
def test_rules_count_each_removal(spark, name, strict, read, removed):
    load = read_tlc(spark, DATA / name, strict=strict)
    assert load.rows_read == read
    assert load.removed == removed
    df = load.trips
    assert df.columns == [
        "trip_id",
        "pickup_time",
        "dropoff_time",
        "pickup_lat",
        "pickup_lon",
        "dropoff_lat",
        "dropoff_lon",
    ]
    rows = df.collect()
    assert len(rows) == load.rows_kept == read - sum(removed.values())
    assert len({r.trip_id for r in rows}) == len(rows)
    assert all(r.pickup_lat != 0 and r.dropoff_lon != 0 for r in rows)
    assert dict(df.dtypes)["pickup_time"] == "timestamp"


def test_times_and_coordinates_read_as_written(spark):
    load = read_tlc(spark, DATA / "yellow_tripdata_2016-02_sample.csv")
    first = (
        load.trips.orderBy("pickup_time")
        .selectExpr("unix_seconds(pickup_time) AS t", "pickup_lat", "dropoff_lon")
        .first()
    )
    assert first.t == 1454313600  # 2016-02-01 08:00:00 read as UTC wall-clock
    assert first.pickup_lat == 40.7527 and first.dropoff_lon == -74.0113


def test_return_trip_found_in_loaded_file(spark):
    load = read_tlc(spark, DATA / "yellow_tripdata_2016-02_sample.csv", strict=True)
    ids = {r.trip_id: r for r in load.trips.collect()}
    got = return_trips(load, 20.0, method="ends").collect()
    assert len(got) == 1
    a, b = ids[got[0].a_id], ids[got[0].b_id]
    assert a.pickup_lat == 40.7527 and b.pickup_lat == 40.7076


def test_not_a_trip_file(spark, tmp_path):
    with pytest.raises(ValueError, match="pickup_time"):
        read_tlc(spark, DATA / "not_a_trip_file.csv")
    with pytest.raises(ValueError, match="does not exist"):
        read_tlc(spark, tmp_path / "missing.csv")
