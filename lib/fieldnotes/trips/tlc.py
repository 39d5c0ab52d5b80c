"""Read real TLC trip files (CSV or Parquet, 2009-2016 layouts with coordinates) into Spark.

Files are listed through Spark's own (Hadoop) file system layer, so ``file://``, ``hdfs://`` and
``s3a://`` paths work as well as local ones. Each file's columns are matched by name on its own
header, so a folder whose files order their columns differently reads correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from fieldnotes.trips.columns import (
    COORDS,
    INT_TIME_UNITS,
    NORMALIZED,
    NYC_BBOX,
    int_time_unit,
    match_columns,
)
from fieldnotes.trips.usable import PARSE_RULES, TIMES, spark_first_hit, spark_hits

STRICT_RULES = ("outside_nyc", "dropoff_not_after_pickup")
"""Rules ``strict`` loading adds after the usable-trip rules."""


@dataclass
class TLCLoad:
    """Normalized trips (a Spark DataFrame), rows read, and rows each cleaning rule removed."""

    trips: object
    rows_read: int
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def rows_kept(self) -> int:
        """Rows left after every rule."""
        return self.rows_read - sum(self.removed.values())


def _format(name: str) -> str | None:
    """``csv`` or ``parquet`` from a file name, None for anything else."""
    low = name.lower()
    if low.endswith((".parquet", ".parq")):
        return "parquet"
    if low.endswith((".csv", ".csv.gz", ".csv.bz2")):
        return "csv"
    return None


def _files(spark, path) -> tuple[list[str], str]:
    """The data files under ``path`` (a file or a folder, any Hadoop URI) and their format."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(str(path))
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hpath):
        raise ValueError(f"path {str(path)!r} does not exist")
    if fs.getFileStatus(hpath).isFile():
        found = [fs.makeQualified(hpath)]
    else:
        found, it = [], fs.listFiles(hpath, True)
        while it.hasNext():
            found.append(it.next().getPath())
    names = sorted(q.toString() for q in found if not q.getName().startswith((".", "_")))
    fmts = {_format(n) for n in names}
    if not names or len(fmts) != 1 or None in fmts:
        raise ValueError(
            f"path {str(path)!r} must hold .csv or .parquet files of one kind, got {names[:5]}"
        )
    return names, fmts.pop()


def _matched(raw, name: str) -> dict[str, str]:
    """``match_columns`` on one file's header, the error naming the file."""
    try:
        return match_columns(raw.columns)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _int_time_unit(raw, column: str, name: str) -> str:
    """The unit (s, ms, us, ns) of an integer timestamp column, from its range (one action)."""
    from pyspark.sql import functions as F

    c = F.col(f"`{column}`")
    lo, hi = raw.agg(F.min(c), F.max(c)).first()
    return int_time_unit(lo, hi, f"{name}, column {column!r}")


def _time(raw, column: str, name: str):
    """Spark Column: a timestamp from a string, timestamp or integer (unit detected) column."""
    from pyspark.sql import functions as F

    c = F.col(f"`{column}`")
    kind = dict(raw.dtypes)[column]
    if kind in ("bigint", "int"):
        per_s = INT_TIME_UNITS[_int_time_unit(raw, column, name)]
        if per_s <= 1_000_000:
            return F.timestamp_micros(c * F.lit(1_000_000 // per_s))
        return F.timestamp_micros(F.floor(c / F.lit(per_s // 1_000_000)))
    if kind == "string":
        return F.try_to_timestamp(F.trim(c))
    if kind.startswith("timestamp") or kind == "date":
        return c.cast("timestamp")
    raise ValueError(f"{name}: column {column!r} has type {kind}, expected a timestamp")


def _coordinate(raw, column: str):
    """Spark Column: a double from a string or numeric column; null where unparseable."""
    from pyspark.sql import functions as F

    c = F.col(f"`{column}`")
    if dict(raw.dtypes)[column] == "string":
        c = F.trim(c)
    return c.try_cast("double")


def _read_one(spark, name: str, fmt: str):
    """One file as parsed normalized columns plus flags ``bad_time`` / ``bad_coordinate``
    (a value present but unparseable); errors name the file."""
    from pyspark.sql import functions as F

    try:
        if fmt == "csv":
            raw = spark.read.option("header", True).option("inferSchema", False).csv(name)
        else:
            raw = spark.read.parquet(name)
    except Exception as e:  # Spark raises its own exception types for unreadable files
        raise ValueError(f"{name}: not a readable {fmt} file ({str(e).splitlines()[0]})") from e
    src = _matched(raw, name)
    parsed = {c: _time(raw, src[c], name) for c in TIMES}
    parsed |= {c: _coordinate(raw, src[c]) for c in COORDS}

    def bad(cols):
        return reduce(or_, [F.col(f"`{src[c]}`").isNotNull() & parsed[c].isNull() for c in cols])

    return raw.select(
        *[parsed[c].alias(c) for c in (*TIMES, *COORDS)],
        bad(TIMES).alias("bad_time"),
        bad(COORDS).alias("bad_coordinate"),
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
    )


def with_row_ids(df, column: str = "trip_id"):
    """``df`` (rows as read, with ``_file`` and ``_block``: the file and the byte offset where
    the row's split starts) plus ``column`` = the row's position in the files taken in path
    order, from 0, and without ``_file`` / ``_block``.

    The same row gets the same id however the files are split into partitions (another
    ``spark.sql.files.maxPartitionBytes``, another number of cores), so a frame recomputed after
    a lost executor or in another session keeps its ids, which ``monotonically_increasing_id``
    alone (partition number and place in it) does not. A split's rows are read in file order
    and one after another within a partition, so a row's place in its split is its
    ``monotonically_increasing_id`` minus the split's smallest; each split starts after the rows
    of the splits before it (one small aggregation, broadcast back).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    m = df.withColumn("_mono", F.monotonically_increasing_id())
    blocks = m.groupBy("_file", "_block").agg(
        F.min("_mono").alias("_first"), F.count(F.lit(1)).alias("_rows")
    )
    before = Window.orderBy("_file", "_block").rowsBetween(Window.unboundedPreceding, -1)
    blocks = blocks.select(
        "_file",
        "_block",
        (F.coalesce(F.sum("_rows").over(before), F.lit(0)) - F.col("_first")).alias("_shift"),
    )
    out = m.join(F.broadcast(blocks), on=["_file", "_block"]).withColumn(
        column, F.col("_mono") + F.col("_shift")
    )
    return out.drop("_file", "_block", "_mono", "_shift")


def _strict_hits():
    """(rule name, condition) for the ``strict`` rules: NYC bounding box, positive duration."""
    from pyspark.sql import functions as F

    (la0, la1), (lo0, lo1) = NYC_BBOX["lat"], NYC_BBOX["lon"]
    box = {c: (la0, la1) if c.endswith("lat") else (lo0, lo1) for c in COORDS}
    out = reduce(or_, [(F.col(c) < lo) | (F.col(c) > hi) for c, (lo, hi) in box.items()])
    return [
        ("outside_nyc", out),
        ("dropoff_not_after_pickup", F.col("dropoff_time") <= F.col("pickup_time")),
    ]


def read_tlc(spark, path, *, strict: bool = False) -> TLCLoad:
    """Real TLC trips at ``path`` as normalized columns, cleaned rule by rule; ``trip_id`` is
    each row's position in the files (path order, from 0, rows removed by a rule included:
    ``with_row_ids``), the same whenever the frame is recomputed.

    Each row counts under the first rule it breaks: ``unparseable_time`` and
    ``unparseable_coordinate`` (a value present that does not parse), then the usable-trip rules
    of ``fieldnotes.trips.usable`` (missing values, non-finite, zero, out of range),
    and with ``strict``: ``outside_nyc`` (an end outside ``NYC_BBOX``) and
    ``dropoff_not_after_pickup``. Times are read as UTC wall-clock (TLC files carry local time);
    integer timestamps are read in the unit (s, ms, us, ns) their range shows, or refused.
    """
    from pyspark.sql import functions as F

    files, fmt = _files(spark, path)
    df = with_row_ids(
        reduce(lambda x, y: x.unionByName(y), [_read_one(spark, f, fmt) for f in files])
    )
    hits = [
        (rule, F.col(flag))
        for rule, flag in zip(PARSE_RULES, ("bad_time", "bad_coordinate"), strict=True)
    ]
    hits += spark_hits() + (_strict_hits() if strict else [])
    tagged = df.select("trip_id", *TIMES, *COORDS, spark_first_hit(hits))
    counts = dict(tagged.groupBy("rejected").count().collect())
    clean = tagged.where(F.col("rejected").isNull())
    return TLCLoad(
        trips=clean.select(*NORMALIZED),
        rows_read=int(sum(counts.values())),
        removed={name: int(counts.get(name, 0)) for name, _ in hits},
    )
