"""Loader tests on small files in the real TLC layouts, dirty rows included."""

from pathlib import Path

import pandas as pd
import pytest

from fieldnotes.trips.join import return_trips
from fieldnotes.trips.session import spark_session
from fieldnotes.trips.tlc import PARSE_RULES, STRICT_RULES, read_tlc
from fieldnotes.trips.usable import RULE_NAMES

DATA = Path(__file__).parent / "data" / "trips"


@pytest.fixture(scope="module")
def spark():
    return spark_session()


def removed(strict=False, **hits):
    """Every rule's count for a load: the named ones as given, the rest 0."""
    names = [*PARSE_RULES, *RULE_NAMES, *(STRICT_RULES if strict else ())]
    assert set(hits) <= set(names)
    return {n: hits.get(n, 0) for n in names}


@pytest.mark.parametrize(
    "name, strict, read, removed",
    [
        (
            "yellow_tripdata_2015-01_sample.csv",
            False,
            12,
            removed(zero_coordinate=2, missing_coordinate=1),
        ),
        (
            "yellow_tripdata_2015-01_sample.csv",
            True,
            12,
            removed(
                True,
                zero_coordinate=2,
                missing_coordinate=1,
                outside_nyc=1,
                dropoff_not_after_pickup=1,
            ),
        ),
        (
            "yellow_tripdata_2016-02_sample.csv",
            False,
            10,
            removed(missing_time=1, zero_coordinate=1),
        ),
        (
            "yellow_tripdata_2016-02_sample.csv",
            True,
            10,
            removed(
                True, missing_time=1, zero_coordinate=1, outside_nyc=1, dropoff_not_after_pickup=1
            ),
        ),
        (
            "yellow_tripdata_2009-01_sample.parquet",
            False,
            8,
            removed(zero_coordinate=1, missing_coordinate=1),
        ),
        ("yellow_tripdata_2014-01_sample.csv", True, 3, removed(True, zero_coordinate=1)),
        (
            "yellow_tripdata_2015-01_unparseable.csv",
            False,
            4,
            removed(unparseable_coordinate=2, unparseable_time=1),
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
    with pytest.raises(ValueError, match="does not exist"):
        read_tlc(spark, tmp_path / "missing.csv")


def test_folder_columns_matched_per_file(spark):
    load = read_tlc(spark, DATA / "mixed_order")
    assert load.rows_read == 9 and load.rows_kept == 9
    rows = load.trips.collect()
    assert all(40 < r.pickup_lat < 41 and -75 < r.pickup_lon < -73 for r in rows)
    assert all(40 < r.dropoff_lat < 41 and -75 < r.dropoff_lon < -73 for r in rows)
    got = return_trips(load, 50.0, method="ends").collect()
    assert len(got) == 1  # the swapped-header file's trip and its return 2 hours later


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_int64_timestamps_in_every_unit(spark, unit):
    load = read_tlc(spark, DATA / f"int_times_{unit}.parquet")
    t = load.trips.selectExpr("unix_seconds(pickup_time) AS s", "unix_seconds(dropoff_time) AS d")
    got = sorted((r.s, r.d) for r in t.collect())
    assert got == [(s, s + 1200) for s in (1454313600, 1454321400, 1454324400)]


def test_int64_timestamps_of_no_unit_are_refused(spark):
    with pytest.raises(ValueError, match=r"int_times_unknown_unit.parquet.*tpep_pickup_datetime"):
        read_tlc(spark, DATA / "int_times_unknown_unit.parquet")


def test_paths_through_spark_file_system(spark):
    uri = (DATA / "mixed_order").resolve().as_uri()  # file:///...
    assert uri.startswith("file://")
    assert read_tlc(spark, uri).rows_read == 9
    with pytest.raises(ValueError, match="does not exist"):
        read_tlc(spark, uri + "_nope")


def test_broken_files_are_named(spark):
    with pytest.raises(ValueError, match="yellow_tripdata_2009-01_cut.parquet"):
        read_tlc(spark, DATA / "truncated")
    with pytest.raises(ValueError, match="not_a_trip_file.csv.*pickup_time"):
        read_tlc(spark, DATA / "not_a_trip_file.csv")


def test_parquet_strings_and_column_orders(spark, tmp_path):
    raw = pd.read_csv(DATA / "yellow_tripdata_2015-01_unparseable.csv", dtype=str)
    raw.to_parquet(tmp_path / "a.parquet")  # every column a string, as some exports are
    raw[raw.columns[::-1]].to_parquet(tmp_path / "b.parquet")  # the same rows, columns reversed
    load = read_tlc(spark, tmp_path)
    assert load.rows_read == 8 and load.rows_kept == 2
    assert load.removed["unparseable_coordinate"] == 4 and load.removed["unparseable_time"] == 2
    lats = sorted(r.pickup_lat for r in load.trips.collect())
    assert lats == [40.750110626220703] * 2


def test_trip_ids_are_row_positions_under_any_partitioning(spark, tmp_path):
    """Ids from ``monotonically_increasing_id`` alone change with the partitioning; these must
    not: the same load recomputed with files cut into many small splits gives every row the
    same id, its position in the files (path order)."""
    from fieldnotes.trips.synthetic import synthetic_trips

    raw = synthetic_trips(3_000, seed=11, days=1)
    parts = [raw.iloc[:1_800], raw.iloc[1_800:]]
    for i, part in enumerate(parts):
        part.to_csv(tmp_path / f"part_{i}.csv", index=False)
    want = pd.concat(parts, ignore_index=True)

    def ids_to_rows():
        rows = read_tlc(spark, tmp_path).trips.select("trip_id", "pickup_lon").collect()
        return {r.trip_id: r.pickup_lon for r in rows}

    whole = ids_to_rows()
    key = "spark.sql.files.maxPartitionBytes"
    old = spark.conf.get(key)
    spark.conf.set(key, "16k")
    try:
        df = read_tlc(spark, tmp_path).trips
        assert df.rdd.getNumPartitions() > 4  # really split, not one partition per file
        split = ids_to_rows()
    finally:
        spark.conf.set(key, old)
    assert split == whole
    lon = next(c for c in raw.columns if c.lower().startswith("pickup_lon"))
    assert sorted(whole) == list(range(len(want)))  # every synthetic row is usable
    assert [whole[i] for i in range(len(want))] == pytest.approx(want[lon].tolist())
