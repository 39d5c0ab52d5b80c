"""A SparkSession sized for this machine by default, or for a cluster given its master URL."""

from __future__ import annotations

import os

CLUSTER_PREFIXES = ("spark://", "yarn", "k8s://", "mesos://", "local")

SHARED_DIR_KEY = "spark.fieldnotes.sharedDir"
"""Spark setting: a folder every executor can read, where ``to_spark`` writes its Parquet."""

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _standalone_host(master: str) -> str | None:
    """The host of a ``spark://host:port`` master URL (None for other masters)."""
    if not master.startswith("spark://"):
        return None
    hostport = master.removeprefix("spark://").split(",")[0]
    return hostport.rsplit(":", 1)[0] if ":" in hostport else hostport


def driver_host_for(master: str, driver_host: str | None = None) -> str | None:
    """The address the driver advertises to executors (``spark.driver.host``), or None for Spark's.

    ``driver_host`` or ``$SPARK_DRIVER_HOST`` when given; 127.0.0.1 for local mode and for a
    standalone master on this machine. A ``spark://`` master on another host without a
    configured driver host is refused: Spark's default follows ``SPARK_LOCAL_IP`` (127.0.0.1
    here), which executors on another host cannot reach.
    """
    host = driver_host or os.environ.get("SPARK_DRIVER_HOST") or None
    if host is not None:
        return host
    if master.startswith("local"):
        return "127.0.0.1"
    remote = _standalone_host(master)
    if remote is None:
        return None  # yarn / k8s / mesos set the driver's address themselves
    if remote in LOOPBACK:
        return "127.0.0.1"
    raise ValueError(
        f"master {master!r} is on another host: set driver_host= or SPARK_DRIVER_HOST to an "
        "address of this machine that its executors can reach"
    )


def spark_session(
    master: str | None = None,
    *,
    shuffle_partitions: int | None = None,
    extra_conf: dict[str, object] | None = None,
    driver_host: str | None = None,
):
    """Get or create a SparkSession: local[*] with few shuffle partitions, UTC, quiet logs.

    ``master`` (or ``$SPARK_MASTER``) may be ``spark://host:7077``, ``yarn`` or ``k8s://...``;
    then the shuffle partitions default to Spark's 200 unless given. ``extra_conf`` holds any
    other Spark settings by their full keys, e.g. ``{"spark.executor.memory": "8g"}``.
    ``driver_host`` (or ``$SPARK_DRIVER_HOST``) is the address executors reach the driver at
    (``driver_host_for``); ``extra_conf``'s ``spark.driver.host`` wins over both.
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
    host = driver_host_for(master, driver_host)
    if host is not None:
        builder = builder.config("spark.driver.host", host)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, str(value))
    # The JVM prints start-up notices straight to the process's stderr, which a notebook page
    # would show as error output; started inside this block it inherits a silenced stderr.
    with quiet_native_output():
        spark = builder.getOrCreate()
    if spark.sparkContext.master != master:
        raise ValueError(
            f"a SparkSession on {spark.sparkContext.master!r} is already running; "
            f"stop it (spark.stop()) before asking for one on {master!r}"
        )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def shared_dir(spark):
    """Folder for files executors must read: the session's ``spark.fieldnotes.sharedDir``
    (``start_local_cluster`` sets it; on a real cluster, storage every host mounts), else a
    folder under the system temporary directory (enough in local mode)."""
    import tempfile
    from pathlib import Path

    folder = spark.conf.get(SHARED_DIR_KEY, None) or tempfile.gettempdir()
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def to_spark(spark, trips, *, via_parquet_above: int = 1_000_000):
    """A pandas frame of normalized trips as a Spark DataFrame with the normalized schema.

    Frames longer than ``via_parquet_above`` rows go through a temporary Parquet file in
    ``shared_dir(spark)`` (bounded driver memory) instead of being sent as row batches through
    the driver.
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

        folder = tempfile.mkdtemp(prefix="fieldnotes_trips_", dir=shared_dir(spark))
        path = Path(folder) / "trips.parquet"
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
