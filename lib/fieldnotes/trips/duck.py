"""The return-trips query in DuckDB SQL: the ``ends`` keyed join (packed key, 2x2 by quadrant)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fieldnotes.trips.columns import NORMALIZED, TLC_NAMES, check_normalized, match_columns
from fieldnotes.trips.geo import EARTH_RADIUS_M, cell_size_deg, check_radius
from fieldnotes.trips.join import WINDOW_US


def _source_sql(con, trips) -> str:
    """SQL for the normalized columns of a pandas frame (registered) or a Parquet path."""
    if isinstance(trips, pd.DataFrame):
        check_normalized(trips)
        con.register("trips_src", trips[NORMALIZED])
        return "SELECT * FROM trips_src"
    if not isinstance(trips, str | Path):
        raise TypeError(
            f"trips must be a pandas DataFrame or a Parquet path, got {type(trips).__name__}"
        )
    path = str(trips).replace("'", "''")
    if not Path(trips).exists():
        raise ValueError(f"trips path {str(trips)!r} does not exist")
    names = [
        row[0] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
    ]
    if all(c in names for c in NORMALIZED):
        return f"SELECT {', '.join(NORMALIZED)} FROM read_parquet('{path}')"
    src = match_columns(names)
    q = {k: '"' + v.replace('"', '""') + '"' for k, v in src.items()}
    coords = [f"{q[c]}::DOUBLE" for c in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon")]
    keep = " AND ".join(f"coalesce({c}, 0) <> 0" for c in coords)
    return (
        "SELECT row_number() OVER () - 1 AS trip_id, "
        f"{q['pickup_time']}::TIMESTAMP AS pickup_time, {q['dropoff_time']}::TIMESTAMP AS dropoff_time, "
        + ", ".join(f"{c} AS {n}" for c, n in zip(coords, list(TLC_NAMES)[2:], strict=True))
        + f" FROM read_parquet('{path}') WHERE {keep}"
    )


def _pack(*fields: str) -> str:
    """SQL: integer expressions packed into one BIGINT, 12 bits each (modulo 4096)."""
    return " | ".join(
        f"((((({f}) % 4096) + 4096) % 4096) << {12 * i})" for i, f in enumerate(fields)
    )


def _hav(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """SQL: haversine distance in metres."""
    return (
        f"{2 * EARTH_RADIUS_M!r} * asin(sqrt(least(1.0, greatest(0.0, "
        f"pow(sin((radians({lat2}) - radians({lat1})) / 2), 2) + cos(radians({lat1})) * "
        f"cos(radians({lat2})) * pow(sin(radians({lon2} - {lon1}) / 2), 2)))))"
    )


def return_trips_duckdb(trips, r: float, *, threads: int | None = None) -> pd.DataFrame:
    """(a_id, b_id) return-trip pairs computed by DuckDB over a pandas frame or a Parquet path."""
    import duckdb

    r = check_radius(r)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        src = _source_sql(con, trips)
        con.execute(
            f"""CREATE TEMP TABLE p AS SELECT trip_id::BIGINT AS id,
                epoch_us(pickup_time::TIMESTAMP) AS t_pick, epoch_us(dropoff_time::TIMESTAMP) AS t_drop,
                pickup_lat::DOUBLE AS plat, pickup_lon::DOUBLE AS plon,
                dropoff_lat::DOUBLE AS dlat, dropoff_lon::DOUBLE AS dlon
            FROM ({src}) WHERE pickup_time IS NOT NULL AND dropoff_time IS NOT NULL
              AND NOT (isnan(pickup_lat) OR isnan(pickup_lon) OR isnan(dropoff_lat) OR isnan(dropoff_lon))
              AND pickup_lat IS NOT NULL AND pickup_lon IS NOT NULL
              AND dropoff_lat IS NOT NULL AND dropoff_lon IS NOT NULL"""
        )
        m = con.execute("SELECT max(greatest(abs(plat), abs(dlat))) FROM p").fetchone()[0]
        m = 0.0 if m is None else float(m)
        if m >= 89:
            raise ValueError(f"trips reach latitude {m}; expected |latitude| < 89 degrees")
        dlat, dlon = cell_size_deg(r, m, factor=2.0)
        cells = []
        for e, lat, lon in (("p", "plat", "plon"), ("d", "dlat", "dlon")):
            y, x = f"({lat} / {dlat!r})", f"({lon} / {dlon!r})"
            cells += [
                f"floor({y})::BIGINT AS {e}_cy",
                f"floor({x})::BIGINT AS {e}_cx",
                f"CASE WHEN {y} - floor({y}) >= 0.5 THEN 1 ELSE -1 END AS {e}_qy",
                f"CASE WHEN {x} - floor({x}) >= 0.5 THEN 1 ELSE -1 END AS {e}_qx",
            ]
        quad = [(f"d_cy + d_qy * {sy}", f"d_cx + d_qx * {sx}") for sy in (0, 1) for sx in (0, 1)]
        a_keys = [_pack(y, x, "p_cy", "p_cx", f"ta + {dt}") for y, x in quad for dt in (0, 1)]
        b_keys = [_pack("p_cy", "p_cx", y, x, "tb") for y, x in quad]
        sql = f"""
        WITH c AS (SELECT *, {", ".join(cells)},
                   floor(t_drop / {WINDOW_US})::BIGINT AS ta, floor(t_pick / {WINDOW_US})::BIGINT AS tb
                   FROM p),
        a AS (SELECT id, t_pick, t_drop, plat, plon, dlat, dlon,
                     unnest([{", ".join(a_keys)}]) AS k FROM c),
        b AS (SELECT id, t_pick, t_drop, plat, plon, dlat, dlon,
                     unnest([{", ".join(b_keys)}]) AS k FROM c)
        SELECT a.id AS a_id, b.id AS b_id FROM a JOIN b ON a.k = b.k
        WHERE a.id <> b.id AND a.t_drop < b.t_pick AND b.t_pick < a.t_drop + {WINDOW_US}
          AND {_hav("a.dlat", "a.dlon", "b.plat", "b.plon")} < {r!r}
          AND {_hav("b.dlat", "b.dlon", "a.plat", "a.plon")} < {r!r}
        ORDER BY a_id, b_id"""
        return con.execute(sql).df()
    finally:
        con.close()
