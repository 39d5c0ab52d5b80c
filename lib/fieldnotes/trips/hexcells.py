"""H3 hexagons (Uber's ``h3`` package) as an alternative bucketing: candidate counts beside the grid's.

A trip end is bucketed into its H3 cell at one resolution; a partner closer than r metres is
looked for in the cell and its six neighbours (``grid_disk(cell, 1)``). From a point at a cell's
vertex the ring's boundary is one edge length away (the outer end of the edge the two
neighbours at that vertex share), so the ring is complete only when every edge of the cell and
of its neighbours is at least r; the flat-to-flat width (sqrt(3) x the edge) is not enough. H3
edges vary over the globe around their published average (``h3.average_hexagon_edge_length``),
so ``h3_resolution`` measures the edges of the cells the trips actually fall in
(``h3.edge_length``) instead of assuming a share of the average.

Counted in pandas on one machine (the package has no Spark or DuckDB binding here): per key, a's
rows times b's rows, as Spark's equi-join would pair them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldnotes.trips.columns import check_normalized, micros
from fieldnotes.trips.geo import check_radius, haversine_m
from fieldnotes.trips.join import WINDOW_US
from fieldnotes.trips.usable import first_broken_rule


def shortest_ring_edge_m(cells: np.ndarray) -> float:
    """Shortest edge (metres) of the H3 cells (integer ids) and of their six neighbours each.

    Raises ValueError if one of them is a pentagon (five neighbours: the ring argument is for
    hexagons); H3's twelve pentagons lie in the oceans, far from any city's trips.
    """
    import h3

    ring = {n for x in np.unique(cells) for n in h3.grid_disk(h3.int_to_str(int(x)), 1)}
    pentagons = sorted(c for c in ring if h3.is_pentagon(c))
    if pentagons:
        raise ValueError(
            f"trips lie next to the H3 pentagon {pentagons[0]}: rings are not hexagons"
        )
    return min(h3.edge_length(e, unit="m") for c in ring for e in h3.origin_to_directed_edges(c))


def _usable_ends(trips: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes (degrees) of both ends of the usable rows of normalized trips."""
    t = trips[first_broken_rule(trips) < 0]
    lat = np.concatenate([t["pickup_lat"].to_numpy(float), t["dropoff_lat"].to_numpy(float)])
    lon = np.concatenate([t["pickup_lon"].to_numpy(float), t["dropoff_lon"].to_numpy(float)])
    return lat, lon


def h3_resolution(r: float, trips: pd.DataFrame) -> int:
    """The finest H3 resolution (0-15) at which every cell that a usable trip end of normalized
    ``trips`` falls in, and every neighbour of those cells, has all its edges at least r metres
    long (``shortest_ring_edge_m``), so that one ring around a drop-off's cell holds every
    pick-up closer than r. Resolutions whose average edge is under r are not tried."""
    import h3

    r = check_radius(r)
    check_normalized(trips)
    lat, lon = _usable_ends(trips)
    if len(lat) == 0:
        raise ValueError("trips has no usable row to size H3 cells from")
    for res in range(15, -1, -1):
        if h3.average_hexagon_edge_length(res, unit="m") < r:
            continue
        if shortest_ring_edge_m(_cells(lat, lon, res)) >= r:
            return res
    raise ValueError(f"no H3 resolution has edges of {r} m around these trips")


def _cells(lat: np.ndarray, lon: np.ndarray, res: int) -> np.ndarray:
    """H3 cell ids (integers) of points in degrees."""
    import h3

    return np.array(
        [h3.str_to_int(h3.latlng_to_cell(a, b, res)) for a, b in zip(lat, lon, strict=True)]
    )


def _disks(cells: np.ndarray) -> list[list[int]]:
    """Each cell with its six neighbours (H3 ids as integers)."""
    import h3

    return [[h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(int(x)), 1)] for x in cells]


def _pairs_per_key(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> int:
    """Candidate pairs of an equi-join of ``a`` and ``b`` on ``keys``: sum of a rows x b rows."""
    ca = a.groupby(keys).size().rename("na")
    cb = b.groupby(keys).size().rename("nb")
    both = pd.concat([ca, cb], axis=1, join="inner")
    return int((both["na"] * both["nb"]).sum())


def hex_candidates(trips: pd.DataFrame, r: float, res: int | None = None) -> dict[str, int]:
    """Candidate pairs of the two H3 bucketings of normalized ``trips`` at radius r (metres) and
    ``res`` (default ``h3_resolution(r, trips)``), and the pairs the both-ends bucketing finds after
    the exact test.

    ``one_end``: as the post's grid, a in its drop-off's disk x 2 buckets (14 rows), b at its
    pick-up cell; ``both_ends``: as ``ends``, a in its drop-off's disk x its pick-up cell x 2
    buckets, b at its pick-up cell x its drop-off's disk (7 rows). Only usable trips take part.
    """
    r = check_radius(r)
    check_normalized(trips)
    res = h3_resolution(r, trips) if res is None else res
    if isinstance(res, bool) or not isinstance(res, int) or not 0 <= res <= 15:
        raise ValueError(f"res must be an H3 resolution 0-15, got {res!r}")
    t = trips[first_broken_rule(trips) < 0]
    ids = t["trip_id"].to_numpy(np.int64)
    pc = _cells(t["pickup_lat"].to_numpy(float), t["pickup_lon"].to_numpy(float), res)
    dc = _cells(t["dropoff_lat"].to_numpy(float), t["dropoff_lon"].to_numpy(float), res)
    ta = micros(t["dropoff_time"]) // WINDOW_US
    tb = micros(t["pickup_time"]) // WINDOW_US
    disk = _disks(dc)
    a = pd.DataFrame({"i": np.arange(len(t)), "c": disk, "pc": pc, "t": ta}).explode("c")
    a = pd.concat([a, a.assign(t=a["t"] + 1)], ignore_index=True)
    a["c"] = a["c"].astype(np.int64)
    b_one = pd.DataFrame({"j": np.arange(len(t)), "c": pc, "t": tb})
    b_both = pd.DataFrame({"j": np.arange(len(t)), "c": pc, "pc": disk, "t": tb}).explode("pc")
    b_both["pc"] = b_both["pc"].astype(np.int64)
    keys = ["c", "pc", "t"]
    cand = a.merge(b_both, on=keys)[["i", "j"]]
    i, j = cand["i"].to_numpy(), cand["j"].to_numpy()
    lat_p, lon_p = t["pickup_lat"].to_numpy(float), t["pickup_lon"].to_numpy(float)
    lat_d, lon_d = t["dropoff_lat"].to_numpy(float), t["dropoff_lon"].to_numpy(float)
    t_pick, t_drop = micros(t["pickup_time"]), micros(t["dropoff_time"])
    ok = (
        (i != j)
        & (t_drop[i] < t_pick[j])
        & (t_pick[j] < t_drop[i] + WINDOW_US)
        & (haversine_m(lat_d[i], lon_d[i], lat_p[j], lon_p[j]) < r)
        & (haversine_m(lat_d[j], lon_d[j], lat_p[i], lon_p[i]) < r)
    )
    found = pd.DataFrame({"a_id": ids[i[ok]], "b_id": ids[j[ok]]}).drop_duplicates()
    return {
        "res": res,
        "one_end": _pairs_per_key(a, b_one, ["c", "t"]),
        "both_ends": len(cand),
        "both_ends_pairs": len(found),
    }
