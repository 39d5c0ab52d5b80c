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
"""

from __future__ import annotations

from itertools import product

from fieldnotes.trips.columns import NORMALIZED
from fieldnotes.trips.geo import EARTH_RADIUS_M, EIGHT_HOURS_S, cell_size_deg, check_radius

METHODS = ("naive", "grid", "quad", "ends")
"""Join methods ``return_trips`` accepts."""

WINDOW_US = EIGHT_HOURS_S * 1_000_000
_BITS = 12  # bits per field in a packed key; cells that collide modulo 4096 only add candidates


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


def _prepared(trips):
    """Numeric columns for the join: ids, times in microseconds, coordinates; unusable rows out."""
    from pyspark.sql import functions as F

    coords = ["pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"]
    cond = F.col("t_pick").isNotNull() & F.col("t_drop").isNotNull()
    for c in coords:
        cond = cond & F.col(c).isNotNull() & ~F.isnan(F.col(c))
    return trips.select(
        F.col("trip_id").cast("long").alias("id"),
        F.unix_micros(F.col("pickup_time").cast("timestamp")).alias("t_pick"),
        F.unix_micros(F.col("dropoff_time").cast("timestamp")).alias("t_drop"),
        *[F.col(c).cast("double").alias(c) for c in coords],
    ).where(cond)


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


def max_abs_latitude(trips) -> float:
    """Largest |latitude| (degrees) of either trip end in a Spark DataFrame (one action)."""
    from pyspark.sql import functions as F

    row = (
        _unwrap(trips)
        .agg(F.max(F.greatest(F.abs("pickup_lat"), F.abs("dropoff_lat"))).alias("m"))
        .collect()[0]
    )
    m = row["m"]
    return 0.0 if m is None or m != m else float(m)


def _cells(lat, lon, dlat, dlon, prefix):
    """Integer cell indices and quadrant directions (+1/-1) of a point, as named columns."""
    from pyspark.sql import functions as F

    y, x = F.col(lat) / F.lit(dlat), F.col(lon) / F.lit(dlon)
    return [
        F.floor(y).cast("long").alias(f"{prefix}_cy"),
        F.floor(x).cast("long").alias(f"{prefix}_cx"),
        F.when(y - F.floor(y) >= 0.5, 1).otherwise(-1).cast("long").alias(f"{prefix}_qy"),
        F.when(x - F.floor(x) >= 0.5, 1).otherwise(-1).cast("long").alias(f"{prefix}_qx"),
    ]


def _pack(*fields):
    """Spark column: several integer columns packed into one long, 12 bits each (modulo 4096)."""
    from pyspark.sql import functions as F

    key = None
    for i, f in enumerate(fields):
        part = F.shiftleft(F.pmod(f, F.lit(1 << _BITS)), _BITS * i)
        key = part if key is None else key.bitwiseOR(part)
    return key


def _sides(p, r, method, max_abs_lat):
    """The two exploded sides (a, b) with a join key column ``k`` (or k0..k2 for ``grid``)."""
    from pyspark.sql import functions as F

    factor = 1.0 if method == "grid" else 2.0
    dlat, dlon = cell_size_deg(r, max_abs_lat, factor=factor)
    keep = ["id", "t_pick", "t_drop", "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"]
    cells = p.select(
        *keep,
        *_cells("pickup_lat", "pickup_lon", dlat, dlon, "p"),
        *_cells("dropoff_lat", "dropoff_lon", dlat, dlon, "d"),
        F.floor(F.col("t_drop") / F.lit(WINDOW_US)).cast("long").alias("ta"),
        F.floor(F.col("t_pick") / F.lit(WINDOW_US)).cast("long").alias("tb"),
    )
    c = F.col
    if method == "grid":  # the post: 9 neighbours x 2 buckets, three integer keys
        nb = [
            F.struct(
                (c("d_cy") + dy).alias("k0"),
                (c("d_cx") + dx).alias("k1"),
                (c("ta") + dt).alias("k2"),
            )
            for dy, dx, dt in product((-1, 0, 1), (-1, 0, 1), (0, 1))
        ]
        a = cells.select(*keep, F.explode(F.array(*nb)).alias("k")).select(*keep, "k.*")
        b = cells.select(*keep, c("p_cy").alias("k0"), c("p_cx").alias("k1"), c("tb").alias("k2"))
        return a, b, ["k0", "k1", "k2"]

    def quad(prefix):
        return [
            (c(f"{prefix}_cy") + c(f"{prefix}_qy") * sy, c(f"{prefix}_cx") + c(f"{prefix}_qx") * sx)
            for sy, sx in product((0, 1), (0, 1))
        ]

    if method == "quad":  # one end: a's drop-off quadrant neighbours x 2 buckets; b at home
        a_keys = [_pack(y, x, c("ta") + dt) for (y, x), dt in product(quad("d"), (0, 1))]
        b_key = _pack(c("p_cy"), c("p_cx"), c("tb"))
        a = cells.select(*keep, F.explode(F.array(*a_keys)).alias("k"))
        b = cells.select(*keep, b_key.alias("k"))
        return a, b, ["k"]
    # ends: a explodes its drop-off quadrant x 2 buckets; b explodes its drop-off quadrant
    a_keys = [
        _pack(y, x, c("p_cy"), c("p_cx"), c("ta") + dt) for (y, x), dt in product(quad("d"), (0, 1))
    ]
    b_keys = [_pack(c("p_cy"), c("p_cx"), y, x, c("tb")) for y, x in quad("d")]
    a = cells.select(*keep, F.explode(F.array(*a_keys)).alias("k"))
    b = cells.select(*keep, F.explode(F.array(*b_keys)).alias("k"))
    return a, b, ["k"]


def exploded_sides(trips, r: float, *, method: str = "grid", max_abs_lat: float | None = None):
    """The two sides of a keyed join (Spark DataFrames with their key columns), before joining."""
    trips, r = _check(trips, r, method)
    if method == "naive":
        raise ValueError("method 'naive' has no keys to explode; use grid, quad or ends")
    if max_abs_lat is None:
        max_abs_lat = max_abs_latitude(trips)
    a, b, _ = _sides(_prepared(trips), r, method, max_abs_lat)
    return a, b


def _candidates(trips, r, method, max_abs_lat):
    """(joined candidates with a_/b_ prefixed columns, column getters) before the exact test."""
    from pyspark.sql import functions as F

    p = _prepared(trips)
    cols = ["id", "t_pick", "t_drop", "pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"]
    if method == "naive":
        a = p.select(*[F.col(x).alias(f"a_{x}") for x in cols])
        b = p.select(*[F.col(x).alias(f"b_{x}") for x in cols])
        return a.crossJoin(b)
    if max_abs_lat is None:
        max_abs_lat = max_abs_latitude(trips)
    a, b, keys = _sides(p, r, method, max_abs_lat)
    a = a.select(*[F.col(x).alias(f"a_{x}") for x in cols], *keys)
    b = b.select(*[F.col(x).alias(f"b_{x}") for x in cols], *keys)
    return a.join(b, on=keys, how="inner")


def return_trips(trips, r: float, *, method: str = "grid", max_abs_lat: float | None = None):
    """Spark DataFrame (a_id, b_id): b is a return trip of a within r metres and 8 hours.

    ``max_abs_lat`` (degrees) sizes longitude cells; by default it is read from the data (one
    small action). Lazy otherwise: nothing runs until an action such as ``count()``.
    """
    from pyspark.sql import functions as F

    trips, r = _check(trips, r, method)
    if max_abs_lat is not None and not 0 <= float(max_abs_lat) < 89:
        raise ValueError(f"max_abs_lat must be in [0, 89) degrees, got {max_abs_lat}")
    joined = _candidates(trips, r, method, max_abs_lat)
    cond = _exact(lambda x: F.col(f"a_{x}"), lambda x: F.col(f"b_{x}"), r)
    return joined.where(cond).select(F.col("a_id"), F.col("b_id"))


def candidate_pairs(trips, r: float, *, method: str = "grid", max_abs_lat: float | None = None):
    """Number of candidate pairs a method hands to the exact test (an action)."""
    trips, r = _check(trips, r, method)
    if method == "naive":
        n = _prepared(trips).count()
        return n * n
    return _candidates(trips, r, method, max_abs_lat).count()
