"""A SparkSession sized for this machine by default, or for a cluster given its master URL."""

from __future__ import annotations

import os

CLUSTER_PREFIXES = ("spark://", "yarn", "k8s://", "mesos://", "local")


def spark_session(
    master: str | None = None,
    *,
    shuffle_partitions: int | None = None,
    extra_conf: dict[str, object] | None = None,
):
    """Get or create a SparkSession: local[*] with few shuffle partitions, UTC, quiet logs.

    ``master`` (or ``$SPARK_MASTER``) may be ``spark://host:7077``, ``yarn`` or ``k8s://...``;
    then the shuffle partitions default to Spark's 200 unless given. ``extra_conf`` holds any
    other Spark settings by their full keys, e.g. ``{"spark.executor.memory": "8g"}``.
    """
    from pyspark.sql import SparkSession

    from fieldnotes.native import quiet_native_output

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    master = master or os.environ.get("SPARK_MASTER") or "local[*]"
    if not isinstance(master, str) or not master.startswith(CLUSTER_PREFIXES):
        raise ValueError(
            f"master must be local[...], spark://..., yarn or k8s://..., got {master!r}"
        )
    local = master.startswith("local")
    if shuffle_partitions is None:
        shuffle_partitions = 2 * (os.cpu_count() or 2) + 4 if local else 200
    builder = (
        SparkSession.builder.master(master)
        .appName("fieldnotes-return-trips")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.files.maxPartitionBytes", str(32 * 1024 * 1024))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, str(value))
    # The JVM prints start-up notices straight to the process's stderr, which a notebook page
    # would show as error output; started inside this block it inherits a silenced stderr.
    with quiet_native_output():
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def to_spark(spark, trips, *, via_parquet_above: int = 1_000_000):
    """A pandas frame of normalized trips as a Spark DataFrame with the normalized schema.

    Frames longer than ``via_parquet_above`` rows go through a temporary Parquet file (bounded
    driver memory) instead of being sent row batches through the driver.
    """
    from pyspark.sql import types as T

    from fieldnotes.trips.columns import NORMALIZED, check_normalized

    check_normalized(trips)
    schema = T.StructType(
        [T.StructField("trip_id", T.LongType(), False)]
        + [T.StructField(c, T.TimestampType(), True) for c in ("pickup_time", "dropoff_time")]
        + [T.StructField(c, T.DoubleType(), True) for c in NORMALIZED[3:]]
    )
    if len(trips) > via_parquet_above:
        import atexit
        import shutil
        import tempfile
        from pathlib import Path

        path = Path(tempfile.mkdtemp(prefix="fieldnotes_trips_")) / "trips.parquet"
        atexit.register(shutil.rmtree, path.parent, True)
        out = trips[NORMALIZED].copy()
        for c in ("pickup_time", "dropoff_time"):
            if getattr(out[c].dt, "tz", None) is not None:
                out[c] = out[c].dt.tz_convert("UTC").dt.tz_localize(None)
            out[c] = out[c].astype("datetime64[us]")
        out.to_parquet(path, row_group_size=250_000)
        df = spark.read.parquet(str(path))
        return df.select(
            "trip_id",
            *[df[c].cast("timestamp").alias(c) for c in ("pickup_time", "dropoff_time")],
            *NORMALIZED[3:],
        )
    pdf = trips[NORMALIZED].copy()
    for c in ("pickup_time", "dropoff_time"):
        s = pdf[c]
        if getattr(s.dt, "tz", None) is None:
            pdf[c] = s.dt.tz_localize("UTC")
    return spark.createDataFrame(pdf, schema=schema)
