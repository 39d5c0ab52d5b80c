"""The return-trips query in DuckDB SQL: the ``ends`` keyed join (packed key, 2x2 by quadrant)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fieldnotes.trips.columns import (
    COORDS,
    INT_TIME_UNITS,
    NORMALIZED,
    check_normalized,
    int_time_unit,
    match_columns,
)
from fieldnotes.trips.geo import EARTH_RADIUS_M, KEY_BITS, MARGIN, check_radius, lat_cell_deg
from fieldnotes.trips.join import WINDOW_US
from fieldnotes.trips.usable import PARSE_RULES, TIMES, sql_first_hit, sql_hits

SIDE_COLUMNS = {
    "row": "id, t_pick, t_drop, pphi, pcos, plon, dphi, dcos, dlon",
    "candidate": "id, t_pick, t_drop, plat, plon, dlat, dlon",
}
"""Columns each side of the join carries (times in microseconds), by where the trigonometry is
done: latitudes in radians and their cosines computed once per trip (``row``), or degrees only
(``candidate``: radians and cosines computed in the test, per candidate pair)."""


def _quoted(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _time_sql(con, path: str, q: str, kind: str) -> str:
    """SQL for a timestamp column ``q`` (quoted) of a Parquet file: strings parsed where they
    can be (NULL otherwise), integers read in the unit their range shows."""
    if kind == "VARCHAR":
        return f"TRY_CAST(trim({q}) AS TIMESTAMP)"
    if kind not in ("BIGINT", "INTEGER"):
        return f"{q}::TIMESTAMP"
    lo, hi = con.execute(f"SELECT min({q}), max({q}) FROM read_parquet('{path}')").fetchone()
    per_s = INT_TIME_UNITS[int_time_unit(lo, hi, f"{path}, column {q}")]
    if per_s <= 1_000_000:
        return f"make_timestamp({q}::BIGINT * {1_000_000 // per_s})"
    return f"make_timestamp({q}::BIGINT // {per_s // 1_000_000})"


def _coordinate_sql(q: str, kind: str) -> str:
    """SQL for a coordinate column ``q`` (quoted): a DOUBLE, NULL where a string does not parse."""
    return f"TRY_CAST(trim({q}) AS DOUBLE)" if kind == "VARCHAR" else f"{q}::DOUBLE"


def _source_sql(con, trips) -> str:
    """SQL for the normalized columns, plus ``bad_time`` / ``bad_coordinate`` (a value present
    that did not parse), of a pandas frame (registered) or a Parquet path.

    A TLC-layout Parquet file has its columns mapped by name (``match_columns``) and gets
    ``trip_id`` = row number from 0.
    """
    typed = "FALSE AS bad_time, FALSE AS bad_coordinate"
    if isinstance(trips, pd.DataFrame):
        check_normalized(trips)
        con.register("trips_src", trips[NORMALIZED])
        return f"SELECT {', '.join(NORMALIZED)}, {typed} FROM trips_src"
    if not isinstance(trips, str | Path):
        raise TypeError(
            f"trips must be a pandas DataFrame or a Parquet path, got {type(trips).__name__}"
        )
    path = str(trips).replace("'", "''")
    if not Path(trips).exists():
        raise ValueError(f"trips path {str(trips)!r} does not exist")
    types = dict(
        row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    )
    if all(c in types for c in NORMALIZED):
        _check_parquet_ids(con, path, str(trips))
        return f"SELECT {', '.join(NORMALIZED)}, {typed} FROM read_parquet('{path}')"
    names = match_columns(list(types))
    src = {norm: _quoted(name) for norm, name in names.items()}
    kind = {norm: types[name] for norm, name in names.items()}
    parsed = {c: _time_sql(con, path, src[c], kind[c]) for c in TIMES}
    parsed |= {c: _coordinate_sql(src[c], kind[c]) for c in COORDS}

    def bad(cols):
        return " OR ".join(f"({src[c]} IS NOT NULL AND {parsed[c]} IS NULL)" for c in cols)

    cols = [f"{parsed[c]} AS {c}" for c in (*TIMES, *COORDS)]
    cols += [f"({bad(TIMES)}) AS bad_time", f"({bad(COORDS)}) AS bad_coordinate"]
    return (
        f"SELECT row_number() OVER () - 1 AS trip_id, {', '.join(cols)} FROM read_parquet('{path}')"
    )


def _check_parquet_ids(con, path: str, name: str) -> None:
    """Raise ValueError naming the file and its first rows when the ``trip_id`` column of a
    normalized Parquet file is missing, not a whole number, or repeated (``check_normalized``'s
    rules for a pandas frame: every engine excludes self-pairs by id)."""
    src = f"(SELECT row_number() OVER () - 1 AS row, trip_id FROM read_parquet('{path}'))"
    null = con.execute(f"SELECT row FROM {src} WHERE trip_id IS NULL ORDER BY row LIMIT 5")
    rows = [r[0] for r in null.fetchall()]
    if rows:
        raise ValueError(f"{name}: column trip_id is missing at rows {rows}")
    frac = con.execute(
        f"SELECT row, trip_id FROM (SELECT *, TRY_CAST(trip_id AS DOUBLE) AS v FROM {src}) "
        "WHERE v IS NULL OR NOT isfinite(v) OR v <> round(v) ORDER BY row LIMIT 5"
    ).fetchall()
    if frac:
        raise ValueError(
            f"{name}: column trip_id is not a whole number at rows {[r[0] for r in frac]} "
            f"(first value {frac[0][1]})"
        )
    dup = con.execute(
        f"SELECT trip_id, count(*) AS n, list(row ORDER BY row)[1:5] FROM {src} "
        "GROUP BY trip_id HAVING count(*) > 1 ORDER BY min(row) LIMIT 1"
    ).fetchone()
    if dup is not None:
        raise ValueError(
            f"{name}: column trip_id repeats ids: id {dup[0]} at rows {dup[2]} ({dup[1]} rows); "
            "ids must be unique (normalize_trips(..., start_id=...) numbers a second file after "
            "the first)"
        )


def _load(con, trips) -> dict[str, int]:
    """Create temp table ``p`` of usable trips (times in microseconds); rows each rule removed
    (``PARSE_RULES`` first, then the usable-trip ``RULES``)."""
    src = _source_sql(con, trips)
    con.execute(
        f"""CREATE TEMP TABLE n AS SELECT trip_id::BIGINT AS id,
            pickup_time::TIMESTAMP AS pickup_time, dropoff_time::TIMESTAMP AS dropoff_time,
            {", ".join(f"{c}::DOUBLE AS {c}" for c in COORDS)}, bad_time, bad_coordinate
        FROM ({src})"""
    )
    hits = [*zip(PARSE_RULES, ("bad_time", "bad_coordinate"), strict=True), *sql_hits()]
    con.execute(f"CREATE TEMP TABLE r AS SELECT *, {sql_first_hit(hits)} AS rejected FROM n")
    counts = dict(
        con.execute(
            "SELECT rejected, count(*) FROM r WHERE rejected IS NOT NULL GROUP BY rejected"
        ).fetchall()
    )
    con.execute(  # the columns of SIDE_COLUMNS
        """CREATE TEMP TABLE p AS SELECT id, epoch_us(pickup_time) AS t_pick,
            epoch_us(dropoff_time) AS t_drop, pickup_lat AS plat, pickup_lon AS plon,
            dropoff_lat AS dlat, dropoff_lon AS dlon
        FROM r WHERE rejected IS NULL"""
    )
    return {name: int(counts.get(name, 0)) for name, _ in hits}


def _connect(threads):
    """A fresh in-memory DuckDB connection, quiet, with ``threads`` threads (None = DuckDB's)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con


def usable_counts_duckdb(trips, *, threads: int | None = None) -> dict[str, int]:
    """Rows each rule (``PARSE_RULES``, then the usable-trip rules) removes, counted by DuckDB."""
    con = _connect(threads)
    try:
        return _load(con, trips)
    finally:
        con.close()


def _pack(*fields: str) -> str:
    """SQL: integer expressions packed into one BIGINT, 12 bits each (modulo 4096)."""
    m = 1 << KEY_BITS
    return " | ".join(
        f"((((({f}) % {m}) + {m}) % {m}) << {KEY_BITS * i})" for i, f in enumerate(fields)
    )


def _end(side: str, e: str, trig: str) -> tuple[str, str, str]:
    """SQL (latitude in radians, its cosine, longitude in degrees) of end ``e`` (``p``/``d``) of
    join side ``side``: carried columns (``trig="row"``) or computed per candidate."""
    if trig == "row":
        return f"{side}.{e}phi", f"{side}.{e}cos", f"{side}.{e}lon"
    phi = f"radians({side}.{e}lat)"
    return phi, f"cos({phi})", f"{side}.{e}lon"


def _hav(p1: str, c1: str, lon1: str, p2: str, c2: str, lon2: str) -> str:
    """SQL: haversine distance in metres (latitudes in radians with their cosines, longitudes
    in degrees)."""
    return (
        f"{2 * EARTH_RADIUS_M!r} * asin(sqrt(least(1.0, greatest(0.0, "
        f"pow(sin(({p2} - {p1}) / 2), 2) + {c1} * {c2} * "
        f"pow(sin(radians({lon2} - {lon1}) / 2), 2)))))"
    )


def _band_lon_cells(band: str, r: float, factor: float) -> str:
    """SQL: cells around the parallel in latitude band ``band`` (``geo.band_lon_cells``)."""
    h = lat_cell_deg(r, factor=factor)
    j = f"({band})::DOUBLE"
    edge = f"least(90.0, greatest(abs(({j} - 1) * {h!r}), abs(({j} + 2) * {h!r})))"
    s, c = repr(math.sin(r / (2 * EARTH_RADIUS_M))), f"cos(radians({edge}))"
    width = f"(degrees(2 * asin(least(1.0, {s} / {c}))) * {MARGIN!r} * {factor!r})"
    return f"greatest(1, CASE WHEN {c} <= {s} THEN 1 ELSE floor(360.0 / {width}) END)::BIGINT"


def _cell_sql(e: str, lat: str, lon: str, r: float) -> list[str]:
    """SQL select items: band, quadrant sign, and longitude cell and sign in the point's own band
    and in the band towards its quadrant, with those bands' cell counts (cells >= 2r, as ``ends``)."""
    h = lat_cell_deg(r, factor=2.0)
    y = f"({lat} / {h!r})"
    cy, qy = f"floor({y})::BIGINT", f"(CASE WHEN {y} - floor({y}) >= 0.5 THEN 1 ELSE -1 END)"
    out = [f"{cy} AS {e}_cy", f"{qy} AS {e}_qy"]
    for suffix, band in (("", cy), ("1", f"({cy} + {qy})")):
        n = _band_lon_cells(band, r, 2.0)
        x = f"(({lon} + 180.0) * {n} / 360.0)"
        out += [
            f"{n} AS {e}_n{suffix}",
            f"(((floor({x})::BIGINT % {n}) + {n}) % {n}) AS {e}_cx{suffix}",
            f"CASE WHEN {x} - floor({x}) >= 0.5 THEN 1 ELSE -1 END AS {e}_qx{suffix}",
        ]
    return out


def _quadrant_sql(e: str) -> list[tuple[str, str]]:
    """SQL (band, lon cell) of the 2x2 cells towards end ``e``'s quadrant, longitude wrapped."""
    other = f"{e}_cy + {e}_qy"
    return [
        (f"{e}_cy", f"{e}_cx"),
        (f"{e}_cy", f"(({e}_cx + {e}_qx) % {e}_n + {e}_n) % {e}_n"),
        (other, f"{e}_cx1"),
        (other, f"(({e}_cx1 + {e}_qx1) % {e}_n1 + {e}_n1) % {e}_n1"),
    ]


def _check_plan(r: float, trig: str) -> float:
    """The checked radius; ``trig`` must name a ``SIDE_COLUMNS`` entry."""
    r = check_radius(r)
    if trig not in SIDE_COLUMNS:
        raise ValueError(f"trig must be one of {sorted(SIDE_COLUMNS)}, got {trig!r}")
    return r


def _join_sql(r: float, trig: str, time_in_key: bool) -> str:
    """SQL: the (a_id, b_id) pairs of the ``ends`` join over temp table ``p`` (``_load``),
    unordered."""
    cells = [*_cell_sql("p", "plat", "plon", r), *_cell_sql("d", "dlat", "dlon", r)]
    cells += [f"radians({e}lat) AS {e}phi, cos(radians({e}lat)) AS {e}cos" for e in "pd"]
    quad = _quadrant_sql("d")
    a_time, b_time = ([["ta"], ["ta + 1"]], ["tb"]) if time_in_key else ([[]], [])
    a_keys = [_pack(y, x, "p_cy", "p_cx", *t) for y, x in quad for t in a_time]
    b_keys = [_pack("p_cy", "p_cx", y, x, *b_time) for y, x in quad]
    cols = SIDE_COLUMNS[trig]
    return f"""
    WITH c AS (SELECT *, {", ".join(cells)},
               floor(t_drop / {WINDOW_US})::BIGINT AS ta, floor(t_pick / {WINDOW_US})::BIGINT AS tb
               FROM p),
    a AS (SELECT {cols}, unnest(list_distinct([{", ".join(a_keys)}])) AS k FROM c),
    b AS (SELECT {cols}, unnest(list_distinct([{", ".join(b_keys)}])) AS k FROM c)
    SELECT a.id AS a_id, b.id AS b_id FROM a JOIN b ON a.k = b.k
      AND a.t_drop < b.t_pick AND b.t_pick < a.t_drop + {WINDOW_US}
    WHERE a.id <> b.id
      AND {_hav(*_end("a", "d", trig), *_end("b", "p", trig))} < {r!r}
      AND {_hav(*_end("b", "d", trig), *_end("a", "p", trig))} < {r!r}"""


def return_trips_duckdb(
    trips,
    r: float,
    *,
    threads: int | None = None,
    trig: str = "candidate",
    time_in_key: bool = True,
) -> pd.DataFrame:
    """(a_id, b_id) return-trip pairs computed by DuckDB over a pandas frame or a Parquet path.

    Only usable trips take part (``usable_counts_duckdb`` counts the rest); cells are sized per
    latitude band and longitude cells wrap around the antimeridian, as in the Spark methods, and
    each trip's keys are deduplicated (``list_distinct``). The defaults are the first edition's
    plan; the others are kept so that the chapter's levers run (``benchmarks/return_trips.py
    --levers``) can measure them against it:
    ``trig="row"`` computes radians and cosines once per trip instead of per candidate pair, and
    ``time_in_key=False`` keys on the cells only (side a 4 rows instead of 8), leaving the
    8-hour band to the join condition.
    """
    r = _check_plan(r, trig)
    con = _connect(threads)
    try:
        _load(con, trips)
        return con.execute(_join_sql(r, trig, time_in_key) + "\n    ORDER BY a_id, b_id").df()
    finally:
        con.close()


@dataclass(frozen=True)
class DuckRun:
    """One timed DuckDB run, split where Spark's benchmark splits it (seconds of wall time).

    ``load_seconds``: connecting, registering the frame or reading the Parquet file, and the
    usable-trip rules with their counts, into a table of usable trips (Spark's counterpart is
    the prepared table cached before its timer). ``query_seconds``: the join from that table to
    a materialised table of pairs, then counted (Spark's counterpart: ``count()`` of the join).
    """

    load_seconds: float
    query_seconds: float
    pairs: int


def timed_duckdb(
    trips,
    r: float,
    *,
    threads: int | None = None,
    trig: str = "candidate",
    time_in_key: bool = True,
) -> DuckRun:
    """Time ``return_trips_duckdb``'s two parts apart (``DuckRun``); same inputs and plans."""
    r = _check_plan(r, trig)
    t0 = time.perf_counter()
    con = _connect(threads)
    try:
        _load(con, trips)
        t1 = time.perf_counter()
        con.execute(f"CREATE TEMP TABLE pairs AS {_join_sql(r, trig, time_in_key)}")
        (pairs,) = con.execute("SELECT count(*) FROM pairs").fetchone()
        t2 = time.perf_counter()
    finally:
        con.close()
    return DuckRun(load_seconds=t1 - t0, query_seconds=t2 - t1, pairs=int(pairs))
