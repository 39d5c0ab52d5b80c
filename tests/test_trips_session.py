"""The session: local by default, UTC, few shuffle partitions; cluster URLs checked."""

import pandas as pd
import pytest

from fieldnotes.trips.session import spark_session, to_spark


def test_local_session_settings():
    spark = spark_session()
    conf = spark.conf
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert int(conf.get("spark.sql.shuffle.partitions")) <= 64
    assert spark.sparkContext.master.startswith("local")
    assert spark_session() is spark  # one session, reused


def test_master_is_validated(monkeypatch):
    with pytest.raises(ValueError, match="master must be"):
        spark_session("http://example:7077")
    monkeypatch.setenv("SPARK_MASTER", "mesos-nope")
    with pytest.raises(ValueError, match="mesos-nope"):
        spark_session()


def test_to_spark_keeps_utc_instants():
    spark = spark_session()
    pdf = pd.DataFrame(
        {
            "trip_id": [7],
            "pickup_time": pd.to_datetime(["2016-02-01 08:00:00"]),
            "dropoff_time": pd.to_datetime(["2016-02-01 08:20:00"]),
            "pickup_lat": [40.75],
            "pickup_lon": [-73.98],
            "dropoff_lat": [40.70],
            "dropoff_lon": [-74.01],
        }
    )
    row = to_spark(spark, pdf).selectExpr("unix_seconds(pickup_time) AS s").collect()[0]
    assert row["s"] == 1454313600  # 2016-02-01T08:00:00Z


def test_to_spark_via_parquet_gives_the_same_rows():
    spark = spark_session()
    from fieldnotes.trips.planted import planted_trips

    trips, _ = planted_trips(50, 80.0, seed=3)
    direct = to_spark(spark, trips).orderBy("trip_id").collect()
    via = to_spark(spark, trips, via_parquet_above=10).orderBy("trip_id").collect()
    assert direct == via


def test_a_running_session_on_another_master_is_not_reused():
    spark_session()
    with pytest.raises(ValueError, match="already running"):
        spark_session("spark://127.0.0.1:7077")
