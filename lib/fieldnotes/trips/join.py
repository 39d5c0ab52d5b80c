"""Return trips as a Spark self-join: the post's cross join and grid join, and faster keyed joins.

Every method ends with the same exact test (strict inequalities, haversine on a 6,371 km sphere),
so they differ only in which candidate pairs reach it:

- ``naive``: the post's starting point; a cross join, then the test (n^2 candidates).
- ``grid``: the post's solution; cells at least r tall and wide (longitude widened for latitude),
  8-hour buckets, each trip exploded into its 3x3 drop-off neighbourhood x 2 buckets = 18 rows,
  an equi-join on three integers (lat cell, lon cell, bucket).
- ``quad``: beyond the post; cells at least 2r wide, so a point's partner lies in its own cell or
  the neighbours towards its quadrant: 2x2 instead of 3x3 (8 rows per trip), one packed long key.
- ``ends``: beyond the post; keys on both ends of the trip (a's drop-off with b's pick-up and
  a's pick-up with b's drop-off), 2x2 by quadrant on each, split between the two sides
  (a: 4 x 2 buckets = 8 rows, b: 4 rows), one packed long key. Far fewer candidates when demand
  is concentrated.

Only usable trips take part (``fieldnotes.trips.usable``: the same rules in every engine, counted
by ``scan_trips``); cells are sized from them, and longitude cells wrap around the antimeridian
(360 / n degrees wide, indices modulo n), so trips on both sides of 180 degrees meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from fieldnotes.trips.columns import COORDS, NORMALIZED
from fieldnotes.trips.geo import (
    EARTH_RADIUS_M,
    EIGHT_HOURS_S,
    KEY_BITS,
    MAX_ABS_LAT,
    cell_size_deg,
    check_radius,
    lon_cells,
)
from fieldnotes.trips.usable import RULE_NAMES, spark_rejected

METHODS = ("naive", "grid", "quad", "ends")
"""Join methods ``return_trips`` accepts."""

WINDOW_US = EIGHT_HOURS_S * 1_000_000
JOIN_COLUMNS = ("id", "t_pick", "t_drop", *COORDS)
"""Columns each side of a join carries: id, times in microseconds, coordinates in degrees."""


def _unwrap(trips):
    """Accept a Spark DataFrame or a ``TLCLoad`` (its ``.trips``)."""
    return getattr(trips, "trips", trips)


def _check(trips, r, method):
    """Validate inputs of the join; return the DataFrame and r."""
    r = check_radius(r)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    trips = _unwrap(trips)
    if not hasattr(trips, "sparkSession"):
        raise TypeError(f"trips must be a Spark DataFrame, got {type(trips).__name__}")
    missing = [c for c in NORMALIZED if c not in trips.columns]
    if missing:
        raise ValueError(f"trips is missing column(s) {missing}; expected {NORMALIZED}")
    return trips, r


def _typed(trips):
    """The normalized columns cast to their types, with ``rejected`` (the usable-trip rules)."""
    from pyspark.sql import functions as F

    typed = trips.select(
        F.col("trip_id").cast("long").alias("id"),
        *[F.col(c).cast("timestamp").alias(c) for c in ("pickup_time", "dropoff_time")],
        *[F.col(c).cast("double").alias(c) for c in COORDS],
    )
    return typed.select("*", spark_rejected())


def _prepared(trips):
    """The usable trips as the join's columns (times in microseconds); unusable rows out."""
    from pyspark.sql import functions as F

    return (
        _typed(trips)
        .where(F.col("rejected").isNull())
        .select(
            "id",
            F.unix_micros("pickup_time").alias("t_pick"),
            F.unix_micros("dropoff_time").alias("t_drop"),
            *COORDS,
        )
    )


@dataclass(frozen=True)
class TripScan:
    """One pass over a Spark DataFrame of trips: rows, rows each usable-trip rule removed, and
    the largest |latitude| (degrees) of either end of a usable trip (0.0 when none is usable)."""

    rows: int
    removed: dict[str, int]
    max_abs_lat: float

    @property
    def usable(self) -> int:
        """Rows that every rule kept."""
        return self.rows - sum(self.removed.values())


def scan_trips(trips) -> TripScan:
    """Count the rows each usable-trip rule removes and size cells from the usable rows (one action)."""
    from pyspark.sql import functions as F

    rej = F.col("rejected")
    lat = F.greatest(F.abs("pickup_lat"), F.abs("dropoff_lat"))
    row = (
        _typed(_unwrap(trips))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.max(F.when(rej.isNull(), lat)).alias("max_abs_lat"),
            *[F.sum(F.when(rej == name, 1).otherwise(0)).alias(name) for name in RULE_NAMES],
        )
        .collect()[0]
    )
    m = row["max_abs_lat"]
    return TripScan(
        rows=int(row["rows"]),
        removed={name: int(row[name] or 0) for name in RULE_NAMES},
        max_abs_lat=0.0 if m is None else float(m),
    )


def max_abs_latitude(trips) -> float:
    """Largest |latitude| (degrees) of either end of a usable trip in a Spark DataFrame (one action)."""
    return scan_trips(trips).max_abs_lat


def _haversine(lat1, lon1, lat2, lon2):
    """Spark column: great-circle distance in metres between two points in degrees."""
    from pyspark.sql import functions as F

    p1, p2 = F.radians(lat1), F.radians(lat2)
    h = F.pow(F.sin((p2 - p1) / 2), 2) + F.cos(p1) * F.cos(p2) * F.pow(
        F.sin(F.radians(lon2 - lon1) / 2), 2
    )
    return F.lit(2 * EARTH_RADIUS_M) * F.asin(
        F.sqrt(F.least(F.greatest(h, F.lit(0.0)), F.lit(1.0)))
    )


def _exact(a, b, r):
    """Spark condition: b (prefix b_) is a return trip of a (prefix a_) within r metres."""
    from pyspark.sql import functions as F

    return (
        (a("id") != b("id"))
        & (a("t_drop") < b("t_pick"))
        & (b("t_pick") < a("t_drop") + F.lit(WINDOW_US))
        & (_haversine(a("dropoff_lat"), a("dropoff_lon"), b("pickup_lat"), b("pickup_lon")) < r)
        & (_haversine(b("dropoff_lat"), b("dropoff_lon"), a("pickup_lat"), a("pickup_lon")) < r)
    )


def _cell_columns(lat, lon, dlat, dlon, n_lon, max_abs_lat, prefix):
    """Cell indices (longitude wrapped modulo ``n_lon``) and quadrant signs (+1/-1) of a point.

    A point beyond ``max_abs_lat`` (its cells would be too narrow to find every pair) stops the
    query with an error naming that limit instead of losing pairs.
    """
    from pyspark.sql import functions as F

    y, x = F.col(lat) / F.lit(dlat), (F.col(lon) + F.lit(180.0)) / F.lit(dlon)
    beyond = F.abs(F.col(lat)) > F.lit(max_abs_lat)
    msg = f"a usable trip lies beyond max_abs_lat={max_abs_lat} degrees; pass max_abs_lat=None"
    return [
        F.when(beyond, F.raise_error(F.lit(msg)))
        .otherwise(F.floor(y).cast("long"))
        .alias(f"{prefix}_cy"),
        F.pmod(F.floor(x).cast("long"), F.lit(n_lon)).alias(f"{prefix}_cx"),
        F.when(y - F.floor(y) >= 0.5, 1).otherwise(-1).cast("long").alias(f"{prefix}_qy"),
        F.when(x - F.floor(x) >= 0.5, 1).otherwise(-1).cast("long").alias(f"{prefix}_qx"),
    ]


def _pack(*fields):
    """Spark column: several integer columns packed into one long, 12 bits each (modulo 4096)."""
    from pyspark.sql import functions as F

    key = None
    for i, f in enumerate(fields):
        part = F.shiftleft(F.pmod(f, F.lit(1 << KEY_BITS)), KEY_BITS * i)
        key = part if key is None else key.bitwiseOR(part)
    return key


def _cells(p, r, method, max_abs_lat):
    """(trips with cell, quadrant and 8-hour bucket columns, cells around a parallel)."""
    from pyspark.sql import functions as F

    factor = 1.0 if method == "grid" else 2.0
    dlat, min_dlon = cell_size_deg(r, max_abs_lat, factor=factor)
    n_lon = lon_cells(min_dlon)
    dlon = 360.0 / n_lon
    cells = p.select(
        *JOIN_COLUMNS,
        *_cell_columns("pickup_lat", "pickup_lon", dlat, dlon, n_lon, max_abs_lat, "p"),
        *_cell_columns("dropoff_lat", "dropoff_lon", dlat, dlon, n_lon, max_abs_lat, "d"),
        F.floor(F.col("t_drop") / F.lit(WINDOW_US)).cast("long").alias("ta"),
        F.floor(F.col("t_pick") / F.lit(WINDOW_US)).cast("long").alias("tb"),
    )
    return cells, n_lon


def _grid_sides(cells, n_lon):
    """The post's sides, key ``k`` a struct of three integers (lat cell, lon cell, bucket):
    a in its drop-off's 9 neighbours x 2 buckets, b at its pick-up cell and bucket."""
    from pyspark.sql import functions as F

    c = F.col
    nb = [
        F.struct(
            (c("d_cy") + dy).alias("k0"),
            F.pmod(c("d_cx") + dx, F.lit(n_lon)).alias("k1"),
            (c("ta") + dt).alias("k2"),
        )
        for dy, dx, dt in product((-1, 0, 1), (-1, 0, 1), (0, 1))
    ]
    a = cells.select(*JOIN_COLUMNS, F.explode(F.array(*nb)).alias("k"))
    b = cells.select(
        *JOIN_COLUMNS,
        F.struct(c("p_cy").alias("k0"), c("p_cx").alias("k1"), c("tb").alias("k2")).alias("k"),
    )
    return a, b


def _quadrant(prefix, n_lon):
    """The 2x2 cells (lat, lon columns) towards a point's quadrant, longitude wrapped."""
    from pyspark.sql import functions as F

    c = F.col
    return [
        (
            c(f"{prefix}_cy") + c(f"{prefix}_qy") * sy,
            F.pmod(c(f"{prefix}_cx") + c(f"{prefix}_qx") * sx, F.lit(n_lon)),
        )
        for sy, sx in product((0, 1), (0, 1))
    ]


def _packed_sides(cells, n_lon, method):
    """The sides of ``quad`` or ``ends``, key ``k`` one packed long.

    quad: a in its drop-off's 2x2 quadrant cells x 2 buckets, b at its pick-up cell.
    ends: a in its drop-off's quadrant x its pick-up cell x 2 buckets; b at its pick-up cell x
    its drop-off's quadrant.
    """
    from pyspark.sql import functions as F

    c = F.col
    quad = _quadrant("d", n_lon)
    if method == "quad":
        a_keys = [_pack(y, x, c("ta") + dt) for (y, x), dt in product(quad, (0, 1))]
        b_keys = [_pack(c("p_cy"), c("p_cx"), c("tb"))]
    else:
        a_keys = [
            _pack(y, x, c("p_cy"), c("p_cx"), c("ta") + dt) for (y, x), dt in product(quad, (0, 1))
        ]
        b_keys = [_pack(c("p_cy"), c("p_cx"), y, x, c("tb")) for y, x in quad]
    a = cells.select(*JOIN_COLUMNS, F.explode(F.array(*a_keys)).alias("k"))
    b = cells.select(*JOIN_COLUMNS, F.explode(F.array(*b_keys)).alias("k"))
    return a, b


def _sides(p, r, method, max_abs_lat):
    """The two exploded sides (a, b) of a keyed method, each with the join key column ``k``."""
    cells, n_lon = _cells(p, r, method, max_abs_lat)
    if method == "grid":
        return _grid_sides(cells, n_lon)
    return _packed_sides(cells, n_lon, method)


def exploded_sides(trips, r: float, *, method: str = "grid", max_abs_lat: float | None = None):
    """The two sides of a keyed join (Spark DataFrames with their key column ``k``), before joining."""
    trips, r = _check(trips, r, method)
    if method == "naive":
        raise ValueError("method 'naive' has no keys to explode; use grid, quad or ends")
    if max_abs_lat is None:
        max_abs_lat = max_abs_latitude(trips)
    return _sides(_prepared(trips), r, method, max_abs_lat)


def _prefixed(df, prefix):
    """The join columns renamed with ``prefix`` (a_ or b_), and the key ``k`` where present."""
    from pyspark.sql import functions as F

    keys = ["k"] if "k" in df.columns else []
    return df.select(*[F.col(x).alias(f"{prefix}{x}") for x in JOIN_COLUMNS], *keys)


def _candidates(trips, r, method, max_abs_lat):
    """Joined candidates with a_/b_ prefixed columns, before the exact test."""
    p = _prepared(trips)
    if method == "naive":
        return _prefixed(p, "a_").crossJoin(_prefixed(p, "b_"))
    if max_abs_lat is None:
        max_abs_lat = max_abs_latitude(trips)
    a, b = _sides(p, r, method, max_abs_lat)
    return _prefixed(a, "a_").join(_prefixed(b, "b_"), on="k", how="inner")


def _check_max_abs_lat(max_abs_lat):
    """Validate a caller's ``max_abs_lat`` (degrees; None = read from the data)."""
    if max_abs_lat is not None and not 0 <= float(max_abs_lat) < MAX_ABS_LAT:
        raise ValueError(f"max_abs_lat must be in [0, {MAX_ABS_LAT:g}) degrees, got {max_abs_lat}")


def return_trips(trips, r: float, *, method: str = "grid", max_abs_lat: float | None = None):
    """Spark DataFrame (a_id, b_id): b is a return trip of a within r metres and 8 hours.

    Only usable trips (``fieldnotes.trips.usable``) take part; ``scan_trips`` counts the rows each
    rule removes. ``max_abs_lat`` (degrees) sizes longitude cells; by default it is read from the
    usable trips (one small action), and a given value below their largest |latitude| stops the
    query with an error rather than losing pairs. Lazy otherwise:
    nothing runs until an action such as ``count()``.
    """
    from pyspark.sql import functions as F

    trips, r = _check(trips, r, method)
    _check_max_abs_lat(max_abs_lat)
    joined = _candidates(trips, r, method, max_abs_lat)
    cond = _exact(lambda x: F.col(f"a_{x}"), lambda x: F.col(f"b_{x}"), r)
    return joined.where(cond).select(F.col("a_id"), F.col("b_id"))


def candidate_pairs(trips, r: float, *, method: str = "grid", max_abs_lat: float | None = None):
    """Number of candidate pairs a method hands to the exact test (an action)."""
    trips, r = _check(trips, r, method)
    _check_max_abs_lat(max_abs_lat)
    if method == "naive":
        n = _prepared(trips).count()
        return n * n
    return _candidates(trips, r, method, max_abs_lat).count()
