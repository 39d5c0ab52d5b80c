"""H3 hexagons (Uber's ``h3`` package) as an alternative bucketing: candidate counts beside the grid's.

A trip end is bucketed into its H3 cell at one resolution; a partner closer than r metres is
looked for in the cell and its six neighbours (``grid_disk(cell, 1)``). That is complete when
every hexagon is at least r wide across its flats (sqrt(3) x its edge length). H3 edges vary
over the globe around their published average (``h3.average_hexagon_edge_length``);
``h3_resolution`` assumes no edge is shorter than half the average, and ``hex_candidates``
checks completeness on the data against the exact oracle rather than trusting that assumption.

Counted in pandas on one machine (the package has no Spark or DuckDB binding here): per key, a's
rows times b's rows, as Spark's equi-join would pair them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fieldnotes.trips.columns import check_normalized, micros
from fieldnotes.trips.geo import check_radius, haversine_m
from fieldnotes.trips.join import WINDOW_US
from fieldnotes.trips.usable import first_broken_rule

SHORTEST_EDGE_SHARE = 0.5
"""Assumed lower bound of an H3 edge as a share of the resolution's average edge length."""


def h3_resolution(r: float) -> int:
    """The finest H3 resolution (0-15) whose hexagons are at least r metres across their flats,
    assuming edges of at least ``SHORTEST_EDGE_SHARE`` of the average."""
    import h3

    r = check_radius(r)
    for res in range(15, -1, -1):
        edge = h3.average_hexagon_edge_length(res, unit="m") * SHORTEST_EDGE_SHARE
        if math.sqrt(3) * edge >= r:
            return res
    raise ValueError(f"no H3 resolution has hexagons {r} m wide")


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
    ``res`` (default ``h3_resolution(r)``), and the pairs the both-ends bucketing finds after
    the exact test.

    ``one_end``: as the post's grid, a in its drop-off's disk x 2 buckets (14 rows), b at its
    pick-up cell; ``both_ends``: as ``ends``, a in its drop-off's disk x its pick-up cell x 2
    buckets, b at its pick-up cell x its drop-off's disk (7 rows). Only usable trips take part.
    """
    r = check_radius(r)
    check_normalized(trips)
    res = h3_resolution(r) if res is None else res
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
