"""Read real TLC trip files (CSV or Parquet, 2009-2016 layouts with coordinates) into Spark."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from pathlib import Path

from fieldnotes.trips.columns import COORDS, NORMALIZED, NYC_BBOX, match_columns


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


def _files(path) -> tuple[list[str], str]:
    """The data files under ``path`` (a file or a folder) and their format, csv or parquet."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"path {str(path)!r} does not exist")
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    files = [q for q in files if not q.name.startswith((".", "_"))]
    fmts = {"parquet" if q.suffix.lower() in (".parquet", ".parq") else "csv" for q in files}
    if not files or len(fmts) != 1:
        raise ValueError(
            f"path {str(path)!r} must hold CSV or Parquet files of one kind, got {files[:5]}"
        )
    return [str(q) for q in files], fmts.pop()


def read_tlc(spark, path, *, strict: bool = False) -> TLCLoad:
    """Real TLC trips at ``path`` as normalized columns plus ``trip_id``, cleaned rule by rule.

    Rules, applied in order, each counted on the rows the previous rules kept:
    ``missing_time`` (a timestamp missing or unparseable), ``zero_or_missing_coordinate`` (what the
    exercise drops), and with ``strict``: ``outside_nyc`` (an end outside ``NYC_BBOX``) and
    ``dropoff_not_after_pickup``. Times are read as UTC wall-clock (TLC files carry local time).
    """
    from pyspark.sql import functions as F

    files, fmt = _files(path)
    if fmt == "csv":
        raw = spark.read.option("header", True).option("inferSchema", False).csv(files)
    else:
        raw = spark.read.parquet(*files)
    src = match_columns(raw.columns)
    dtypes = dict(raw.dtypes)

    def ts(c):
        col = F.col(f"`{src[c]}`")
        if fmt == "csv":
            return F.try_to_timestamp(F.trim(col))
        if dtypes[src[c]] == "bigint":  # nanosecond timestamps (pandas' default) read as longs
            return F.timestamp_micros(F.floor(col / 1000))
        return col.cast("timestamp")

    df = raw.select(
        ts("pickup_time").alias("pickup_time"),
        ts("dropoff_time").alias("dropoff_time"),
        *[F.col(f"`{src[c]}`").cast("double").alias(c) for c in COORDS],
    )
    rules = [
        ("missing_time", F.col("pickup_time").isNull() | F.col("dropoff_time").isNull()),
        (
            "zero_or_missing_coordinate",
            reduce(or_, [F.col(c).isNull() | F.isnan(c) | (F.col(c) == 0) for c in COORDS]),
        ),
    ]
    if strict:
        (la0, la1), (lo0, lo1) = NYC_BBOX["lat"], NYC_BBOX["lon"]
        box = {c: (la0, la1) if c.endswith("lat") else (lo0, lo1) for c in COORDS}
        out = reduce(or_, [(F.col(c) < lo) | (F.col(c) > hi) for c, (lo, hi) in box.items()])
        rules += [
            ("outside_nyc", out),
            ("dropoff_not_after_pickup", F.col("dropoff_time") <= F.col("pickup_time")),
        ]
    # one pass counts every rule on the rows that the earlier rules kept
    aggs, kept = [F.count(F.lit(1)).alias("rows_read")], F.lit(True)
    for name, bad in rules:
        hit = kept & F.coalesce(bad, F.lit(True))
        aggs.append(F.sum(F.when(hit, 1).otherwise(0)).alias(name))
        kept = kept & ~F.coalesce(bad, F.lit(True))
    counts = df.agg(*aggs).collect()[0].asDict()
    clean = df.where(kept).withColumn("trip_id", F.monotonically_increasing_id())
    return TLCLoad(
        trips=clean.select(*NORMALIZED),
        rows_read=int(counts.pop("rows_read")),
        removed={k: int(v or 0) for k, v in counts.items()},
    )
