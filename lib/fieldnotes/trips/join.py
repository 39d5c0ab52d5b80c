"""Return trips as a Spark self-join: the post's cross join and grid join, and faster keyed joins.

Every method ends with the same exact test (strict inequalities, haversine on a 6,371 km sphere),
so they differ only in which candidate pairs reach it:

- ``naive``: the post's starting point; a cross join, then the test (n^2 candidates).
- ``grid``: the post's solution; cells at least r tall and wide (longitude widened for latitude),
  8-hour buckets, each trip exploded into its 3x3 drop-off neighbourhood x 2 buckets = 18 rows,
  an equi-join on the three integers (lat cell, lon cell, bucket) packed into one long.
- ``quad``: beyond the post; cells at least 2r wide, so a point's partner lies in its own cell or
  the neighbours towards its quadrant: 2x2 instead of 3x3 (8 rows per trip), one packed long key.
- ``ends``: beyond the post; keys on both ends of the trip (a's drop-off with b's pick-up and
  a's pick-up with b's drop-off), 2x2 by quadrant on each, split between the two sides
  (a: 4 x 2 buckets = 8 rows, b: 4 rows), one packed long key. Far fewer candidates when demand
  is concentrated.

Only usable trips take part (``fieldnotes.trips.usable``: the same rules in every engine, counted
by ``scan_trips``). Cells are sized per latitude band (``geo.band_lon_cells``: each band's
longitude cells are wide enough for its own latitude and its neighbours'), so the neighbour
search is exact at every latitude, poles included, and no trip widens another's cells;
longitude cells wrap around the antimeridian (360 / n degrees wide, indices modulo n), so trips
on both sides of 180 degrees meet. A neighbour in the next band is looked up in that band's
own grid. Exploded keys are deduplicated per row (``array_distinct``): where a band has only
one or two cells, or a wrapped neighbour shares a packed field, a trip is still counted once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

from fieldnotes.trips.columns import COORDS, NORMALIZED
from fieldnotes.trips.geo import (
    EARTH_RADIUS_M,
    EIGHT_HOURS_S,
    KEY_BITS,
    MARGIN,
    check_radius,
    lat_cell_deg,
)
from fieldnotes.trips.usable import RULE_NAMES, spark_rejected

METHODS = ("naive", "grid", "quad", "ends")
"""Join methods ``return_trips`` accepts."""

WINDOW_US = EIGHT_HOURS_S * 1_000_000


@dataclass(frozen=True)
class JoinOptions:
    """How the join gets its inputs. The defaults are the first edition's plan; the other
    variants are kept so that the chapter's levers run (``benchmarks/return_trips.py
    --levers``) can measure them against it.

    ``trig``: ``"candidate"`` computes each end's latitude in radians and its cosine in the exact
    test, per candidate pair; ``"row"`` computes them once per trip before the explode, which
    costs two more columns in every exploded row, so more shuffle bytes. Each side carries only
    the time its half of the test reads (a its drop-off, b its pick-up); a side carrying both
    times was measured too and removed: Spark's optimizer prunes the unused column, so its plan
    and shuffle bytes were the same.
    """

    trig: str = "candidate"
    broadcast_b: bool = False
    """Hint Spark to broadcast side b (every trip's 4 pick-up keys) to every task of side a, in
    place of shuffling both sides (Spark chooses when False)."""

    def __post_init__(self):
        if self.trig not in ("row", "candidate"):
            raise ValueError(f"trig must be 'row' or 'candidate', got {self.trig!r}")
        if not isinstance(self.broadcast_b, bool):
            raise ValueError(f"broadcast_b must be True or False, got {self.broadcast_b!r}")

    def coords(self) -> tuple[str, ...]:
        """Coordinate columns each side carries: degrees, or radians and cosines plus longitude."""
        if self.trig == "candidate":
            return tuple(COORDS)
        return ("p_phi", "p_cos", "pickup_lon", "d_phi", "d_cos", "dropoff_lon")

    def side(self, name: str) -> tuple[str, ...]:
        """Columns side ``name`` (``"a"`` or ``"b"``) of a join carries: id, time(s) in
        microseconds, coordinates."""
        if name not in ("a", "b"):
            raise ValueError(f"side name must be 'a' or 'b', got {name!r}")
        return ("id", "t_drop" if name == "a" else "t_pick", *self.coords())


DEFAULT_OPTIONS = JoinOptions()


def _unwrap(trips):
    """Accept a Spark DataFrame or a ``TLCLoad`` (its ``.trips``)."""
    return getattr(trips, "trips", trips)


def _check(trips, r, method):
    """Validate inputs of the join; return the DataFrame (or ``PreparedTrips``) and r."""
    r = check_radius(r)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(trips, PreparedTrips):
        return trips, r
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
    """The usable trips (unusable rows out): id, times in microseconds, coordinates in degrees,
    and each end's latitude in radians and its cosine (``p_phi``, ``p_cos``, ``d_phi``,
    ``d_cos``), computed once per trip."""
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
        .select(
            "*",
            *[
                expr
                for e, lat in (("p", "pickup_lat"), ("d", "dropoff_lat"))
                for expr in (
                    F.radians(lat).alias(f"{e}_phi"),
                    F.cos(F.radians(lat)).alias(f"{e}_cos"),
                )
            ],
        )
    )


@dataclass(frozen=True)
class PreparedTrips:
    """The usable trips in the join's columns (``prepare_trips``); ``return_trips`` and
    ``candidate_pairs`` take it in place of a DataFrame of normalized trips."""

    df: object


def prepare_trips(trips) -> PreparedTrips:
    """The usable trips with their times in microseconds and trigonometry computed, to be cached
    once (``.df.cache()``) and reused by every radius and method."""
    trips, _ = _check(trips, 1.0, "naive")
    return PreparedTrips(_prepared(trips))


@dataclass(frozen=True)
class TripScan:
    """One pass over a Spark DataFrame of trips: rows, and rows each usable-trip rule removed."""

    rows: int
    removed: dict[str, int]

    @property
    def usable(self) -> int:
        """Rows that every rule kept."""
        return self.rows - sum(self.removed.values())


def scan_trips(trips) -> TripScan:
    """Count the rows each usable-trip rule removes (one action)."""
    from pyspark.sql import functions as F

    rej = F.col("rejected")
    row = (
        _typed(_unwrap(trips))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            *[F.sum(F.when(rej == name, 1).otherwise(0)).alias(name) for name in RULE_NAMES],
        )
        .collect()[0]
    )
    return TripScan(
        rows=int(row["rows"]),
        removed={name: int(row[name] or 0) for name in RULE_NAMES},
    )


def _haversine(p1, c1, lon1, p2, c2, lon2):
    """Spark column: great-circle distance in metres between two points given as latitude in
    radians, its cosine, and longitude in degrees."""
    from pyspark.sql import functions as F

    h = F.pow(F.sin((p2 - p1) / 2), 2) + c1 * c2 * F.pow(F.sin(F.radians(lon2 - lon1) / 2), 2)
    return F.lit(2 * EARTH_RADIUS_M) * F.asin(
        F.sqrt(F.least(F.greatest(h, F.lit(0.0)), F.lit(1.0)))
    )


def _end(side, e, trig):
    """(latitude in radians, its cosine, longitude in degrees) of end ``e`` (``"p"`` pick-up or
    ``"d"`` drop-off) of a side's columns ``side(name)``: carried, or computed here."""
    from pyspark.sql import functions as F

    full = {"p": "pickup", "d": "dropoff"}[e]
    if trig == "row":
        return side(f"{e}_phi"), side(f"{e}_cos"), side(f"{full}_lon")
    phi = F.radians(side(f"{full}_lat"))
    return phi, F.cos(phi), side(f"{full}_lon")


def _exact(a, b, r, trig):
    """Spark condition: b (prefix b_) is a return trip of a (prefix a_) within r metres."""
    from pyspark.sql import functions as F

    return (
        (a("id") != b("id"))
        & (a("t_drop") < b("t_pick"))
        & (b("t_pick") < a("t_drop") + F.lit(WINDOW_US))
        & (_haversine(*_end(a, "d", trig), *_end(b, "p", trig)) < r)
        & (_haversine(*_end(b, "d", trig), *_end(a, "p", trig)) < r)
    )


def _band_lon_cells(band, r, factor):
    """Spark column: cells around the parallel in latitude band ``band`` (``geo.band_lon_cells``)."""
    from pyspark.sql import functions as F

    height = lat_cell_deg(r, factor=factor)
    j = band.cast("double")
    edge = F.least(F.lit(90.0), F.greatest(F.abs((j - 1) * height), F.abs((j + 2) * height)))
    s, c = F.lit(math.sin(r / (2 * EARTH_RADIUS_M))), F.cos(F.radians(edge))
    width = F.degrees(2 * F.asin(F.least(F.lit(1.0), s / c))) * MARGIN * factor
    n = F.when(c <= s, F.lit(1)).otherwise(F.floor(F.lit(360.0) / width))
    return F.greatest(n, F.lit(1)).cast("long")


def _lon_cell(lon, band, r, factor):
    """Spark columns (cell index modulo the band's cells, quadrant sign +1/-1, cells in the band)
    of longitude column ``lon`` in latitude band ``band``'s grid."""
    from pyspark.sql import functions as F

    n = _band_lon_cells(band, r, factor)
    x = (F.col(lon) + F.lit(180.0)) * n / F.lit(360.0)
    cx = F.pmod(F.floor(x).cast("long"), n)
    qx = F.when(x - F.floor(x) >= 0.5, 1).otherwise(-1).cast("long")
    return cx, qx, n


def _cell_columns(lat, lon, r, factor, prefix):
    """Latitude band, its quadrant sign, and the longitude cell and sign in the point's own band
    (``{prefix}_cx``, ``{prefix}_qx``) and in the band towards its quadrant (``..._cx1``,
    ``..._qx1``), with those bands' cell counts (``..._n``, ``..._n1``)."""
    from pyspark.sql import functions as F

    y = F.col(lat) / F.lit(lat_cell_deg(r, factor=factor))
    cy = F.floor(y).cast("long")
    qy = F.when(y - F.floor(y) >= 0.5, 1).otherwise(-1).cast("long")
    cx, qx, n = _lon_cell(lon, cy, r, factor)
    cx1, qx1, n1 = _lon_cell(lon, cy + qy, r, factor)
    return [
        cy.alias(f"{prefix}_cy"),
        qy.alias(f"{prefix}_qy"),
        cx.alias(f"{prefix}_cx"),
        qx.alias(f"{prefix}_qx"),
        n.alias(f"{prefix}_n"),
        cx1.alias(f"{prefix}_cx1"),
        qx1.alias(f"{prefix}_qx1"),
        n1.alias(f"{prefix}_n1"),
    ]


def _pack(*fields):
    """Spark column: several integer columns packed into one long, 12 bits each (modulo 4096)."""
    from pyspark.sql import functions as F

    key = None
    for i, f in enumerate(fields):
        part = F.shiftleft(F.pmod(f, F.lit(1 << KEY_BITS)), KEY_BITS * i)
        key = part if key is None else key.bitwiseOR(part)
    return key


def key_fields(key: str, names: tuple[str, ...]):
    """Spark columns: the fields of packed key column ``key`` (``_pack``: 12 bits each, so each
    field is its integer modulo 4096), named ``names`` in packing order."""
    from pyspark.sql import functions as F

    if not names or len(names) * KEY_BITS > 63:
        raise ValueError(f"names must name 1 to {63 // KEY_BITS} packed fields, got {names!r}")
    mask = F.lit((1 << KEY_BITS) - 1)
    return [
        F.shiftright(F.col(key), KEY_BITS * i).bitwiseAND(mask).alias(n)
        for i, n in enumerate(names)
    ]


def _cells(p, r, method):
    """Trips with their cell and quadrant columns at both ends and their 8-hour buckets."""
    from pyspark.sql import functions as F

    factor = 1.0 if method == "grid" else 2.0
    return p.select(
        "*",
        *_cell_columns("pickup_lat", "pickup_lon", r, factor, "p"),
        *_cell_columns("dropoff_lat", "dropoff_lon", r, factor, "d"),
        F.floor(F.col("t_drop") / F.lit(WINDOW_US)).cast("long").alias("ta"),
        F.floor(F.col("t_pick") / F.lit(WINDOW_US)).cast("long").alias("tb"),
    )


def _exploded(cells, keys, columns):
    """``cells``' ``columns`` with one row per distinct key of ``keys`` (column ``k``)."""
    from pyspark.sql import functions as F

    return cells.select(*columns, F.explode(F.array_distinct(F.array(*keys))).alias("k"))


def _grid_sides(cells, r, opts):
    """The post's sides, key ``k`` one packed long (lat band, lon cell, bucket): a in its
    drop-off's 3x3 neighbours x 2 buckets (the bands above and below looked up in their own
    grids), b at its pick-up cell and bucket.

    Each neighbouring band's cell and cell count are computed once per trip, in columns before
    the explode; built inside the 18 keys they were evaluated once per key and the generated
    code grew past what the JVM compiles, which made ``grid`` slower than the cross join.
    """
    from pyspark.sql import functions as F

    c = F.col
    bands = []
    for dy in (-1, 0, 1):
        cx, _, n = _lon_cell("dropoff_lon", c("d_cy") + dy, r, 1.0)
        bands += [cx.alias(f"g_cx{dy + 1}"), n.alias(f"g_n{dy + 1}")]
    cells = cells.select("*", *bands)
    nb = [
        _pack(
            c("d_cy") + dy,
            F.pmod(c(f"g_cx{dy + 1}") + dx, c(f"g_n{dy + 1}")),
            c("ta") + dt,
        )
        for dy, dx, dt in product((-1, 0, 1), (-1, 0, 1), (0, 1))
    ]
    b_key = _pack(c("p_cy"), c("p_cx"), c("tb"))
    return _exploded(cells, nb, opts.side("a")), _exploded(cells, [b_key], opts.side("b"))


def _quadrant(prefix):
    """The 2x2 cells (band, lon cell columns) towards a point's quadrant, longitude wrapped:
    two in its own band, two in the band towards its quadrant (in that band's grid)."""
    from pyspark.sql import functions as F

    c = F.col
    own, other = c(f"{prefix}_cy"), c(f"{prefix}_cy") + c(f"{prefix}_qy")
    return [
        (own, c(f"{prefix}_cx")),
        (own, F.pmod(c(f"{prefix}_cx") + c(f"{prefix}_qx"), c(f"{prefix}_n"))),
        (other, c(f"{prefix}_cx1")),
        (other, F.pmod(c(f"{prefix}_cx1") + c(f"{prefix}_qx1"), c(f"{prefix}_n1"))),
    ]


def _packed_sides(cells, method, opts):
    """The sides of ``quad`` or ``ends``, key ``k`` one packed long.

    quad: a in its drop-off's 2x2 quadrant cells x 2 buckets, b at its pick-up cell.
    ends: a in its drop-off's quadrant x its pick-up cell x 2 buckets; b at its pick-up cell x
    its drop-off's quadrant.
    """
    from pyspark.sql import functions as F

    c = F.col
    quad = _quadrant("d")
    if method == "quad":
        a_keys = [_pack(y, x, c("ta") + dt) for (y, x), dt in product(quad, (0, 1))]
        b_keys = [_pack(c("p_cy"), c("p_cx"), c("tb"))]
    else:
        a_keys = [
            _pack(y, x, c("p_cy"), c("p_cx"), c("ta") + dt) for (y, x), dt in product(quad, (0, 1))
        ]
        b_keys = [_pack(c("p_cy"), c("p_cx"), y, x, c("tb")) for y, x in quad]
    return _exploded(cells, a_keys, opts.side("a")), _exploded(cells, b_keys, opts.side("b"))


def _prepared_of(trips):
    """The prepared usable trips of a checked DataFrame or ``PreparedTrips``."""
    return trips.df if isinstance(trips, PreparedTrips) else _prepared(trips)


def exploded_sides(
    trips, r: float, *, method: str = "grid", options: JoinOptions = DEFAULT_OPTIONS
):
    """The two sides of a keyed join (Spark DataFrames with their key column ``k``), before joining."""
    trips, r = _check(trips, r, method)
    if method == "naive":
        raise ValueError("method 'naive' has no keys to explode; use grid, quad or ends")
    cells = _cells(_prepared_of(trips), r, method)
    if method == "grid":
        return _grid_sides(cells, r, options)
    return _packed_sides(cells, method, options)


def _prefixed(df, prefix):
    """``df``'s columns renamed with ``prefix`` (a_ or b_), the key ``k`` kept as it is."""
    from pyspark.sql import functions as F

    return df.select(*[F.col(x).alias(x if x == "k" else f"{prefix}{x}") for x in df.columns])


def _candidates(trips, r, method, options):
    """Joined candidates with a_/b_ prefixed columns, before the exact test."""
    if method == "naive":
        p = _prepared_of(trips)
        return _prefixed(p.select(*options.side("a")), "a_").crossJoin(
            _prefixed(p.select(*options.side("b")), "b_")
        )
    from pyspark.sql import functions as F

    a, b = exploded_sides(trips, r, method=method, options=options)
    b = _prefixed(b, "b_")
    return _prefixed(a, "a_").join(F.broadcast(b) if options.broadcast_b else b, on="k")


def return_trips(trips, r: float, *, method: str = "grid", options: JoinOptions = DEFAULT_OPTIONS):
    """Spark DataFrame (a_id, b_id): b is a return trip of a within r metres and 8 hours.

    ``trips`` is a DataFrame of normalized trips, a ``TLCLoad`` or ``PreparedTrips``. Only usable
    trips (``fieldnotes.trips.usable``) take part; ``scan_trips`` counts the rows each rule
    removes. ``options`` picks how the join gets its inputs (``JoinOptions``). This only builds a
    plan: the scan, the explode, the exchanges, the join and the exact test run when an action
    (``count()``, ``collect()``, a write) asks for a result, and again at every action.
    """
    from pyspark.sql import functions as F

    trips, r = _check(trips, r, method)
    joined = _candidates(trips, r, method, options)
    cond = _exact(lambda x: F.col(f"a_{x}"), lambda x: F.col(f"b_{x}"), r, options.trig)
    return joined.where(cond).select(F.col("a_id"), F.col("b_id"))


def candidate_pairs(trips, r: float, *, method: str = "grid"):
    """Number of candidate pairs a method hands to the exact test (an action)."""
    trips, r = _check(trips, r, method)
    if method == "naive":
        n = _prepared_of(trips).count()
        return n * n
    return _candidates(trips, r, method, DEFAULT_OPTIONS).count()


def pairs_and_candidates(trips, r: float, *, method: str = "grid"):
    """(pairs, candidates): the (a_id, b_id) pairs as a sorted pandas DataFrame and the number
    of candidate pairs the method handed to the exact test, from one Spark action (the same
    join as ``return_trips``, aggregated instead of filtered)."""
    import pandas as pd
    from pyspark.sql import functions as F

    trips, r = _check(trips, r, method)
    joined = _candidates(trips, r, method, DEFAULT_OPTIONS)
    cond = _exact(lambda x: F.col(f"a_{x}"), lambda x: F.col(f"b_{x}"), r, DEFAULT_OPTIONS.trig)
    pair = F.when(cond, F.struct(F.col("a_id").alias("a"), F.col("b_id").alias("b")))
    row = joined.agg(F.count(F.lit(1)).alias("n"), F.collect_list(pair).alias("p")).collect()[0]
    pairs = pd.DataFrame(
        [(int(x["a"]), int(x["b"])) for x in row["p"]], columns=["a_id", "b_id"], dtype="int64"
    )
    return pairs.sort_values(["a_id", "b_id"], ignore_index=True), int(row["n"])


def key_loads(trips, r: float, *, method: str = "ends", top: int = 10):
    """The ``top`` join keys by candidate pairs (pandas: key, a rows, b rows, candidates, share
    of all candidates), to see whether a few keys dominate the join (skew). Two actions."""
    from pyspark.sql import functions as F

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    a, b = exploded_sides(trips, r, method=method)
    per_key = (
        a.groupBy("k")
        .agg(F.count(F.lit(1)).alias("a_rows"))
        .join(b.groupBy("k").agg(F.count(F.lit(1)).alias("b_rows")), on="k")
        .select("k", "a_rows", "b_rows", (F.col("a_rows") * F.col("b_rows")).alias("candidates"))
    )
    total = per_key.agg(F.sum("candidates")).collect()[0][0] or 0
    out = per_key.orderBy(F.desc("candidates")).limit(top).toPandas()
    out["share of candidates"] = out["candidates"] / total if total else 0.0
    return out
