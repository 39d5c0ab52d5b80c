"""The normalized trip columns and the mapping from every TLC layout that carries coordinates."""

from __future__ import annotations

import numpy as np
import pandas as pd

NORMALIZED = [
    "trip_id",
    "pickup_time",
    "dropoff_time",
    "pickup_lat",
    "pickup_lon",
    "dropoff_lat",
    "dropoff_lon",
]
"""Columns every method reads: ids (long), UTC timestamps, coordinates in degrees (double)."""

# normalized name -> accepted TLC names (compared lower-cased with spaces stripped)
TLC_NAMES = {
    "pickup_time": [
        "tpep_pickup_datetime",
        "lpep_pickup_datetime",
        "pickup_datetime",
        "trip_pickup_datetime",
    ],
    "dropoff_time": [
        "tpep_dropoff_datetime",
        "lpep_dropoff_datetime",
        "dropoff_datetime",
        "trip_dropoff_datetime",
    ],
    "pickup_lat": ["pickup_latitude", "start_lat"],
    "pickup_lon": ["pickup_longitude", "start_lon"],
    "dropoff_lat": ["dropoff_latitude", "end_lat"],
    "dropoff_lon": ["dropoff_longitude", "end_lon"],
}
COORDS = ["pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"]
NYC_BBOX = {"lat": (40.45, 41.0), "lon": (-74.30, -73.65)}
"""Bounding box (degrees) that ``strict`` loading keeps: the five boroughs and both airports."""


EPOCH_RANGE_S = (946_684_800, 4_102_444_800)
"""Integer timestamps must fall in 2000-01-01 .. 2100-01-01 (seconds) in one unit to be read."""
INT_TIME_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
"""Units an integer timestamp column may be stored in, as ticks per second."""


def int_time_unit(lo, hi, where: str) -> str:
    """The unit (s, ms, us, ns) in which integer timestamps lo..hi all fall in 2000-2100.

    ``where`` names the file and column for the ValueError raised when no unit fits; an all-null
    column (lo None) reads as microseconds, which changes nothing.
    """
    if lo is None:
        return "us"
    for unit, per_s in INT_TIME_UNITS.items():
        if EPOCH_RANGE_S[0] * per_s <= lo and hi <= EPOCH_RANGE_S[1] * per_s:
            return unit
    raise ValueError(
        f"{where}: integer timestamps run from {lo} to {hi}, which is not epoch seconds, ms, "
        "us or ns of one unit within the years 2000-2100"
    )


def match_columns(names) -> dict[str, str]:
    """Map each normalized column to the source column name; ValueError names what is missing."""
    lookup = {str(c).strip().lower(): c for c in names}
    found, missing = {}, []
    for norm, options in TLC_NAMES.items():
        hit = next((lookup[o] for o in options if o in lookup), None)
        if hit is None:
            missing.append(f"{norm} (one of {options})")
        else:
            found[norm] = hit
    if missing:
        raise ValueError(
            "not a TLC trip file with coordinates (2009-2016 layouts): missing column "
            + "; ".join(missing)
            + f"; columns present: {list(names)[:20]}"
        )
    return found


def check_normalized(df: pd.DataFrame, where: str = "trips") -> None:
    """Raise ValueError naming the normalized columns that the pandas frame ``df`` lacks, or
    its first rows whose ``trip_id`` is missing, not a whole number, or repeated.

    Every engine excludes a trip paired with itself by id, so ids must be unique: two files
    normalized separately both number from 0 (``normalize_trips``'s ``start_id`` numbers the
    second after the first).
    """
    cols = list(df.columns)
    missing = [c for c in NORMALIZED if c not in cols]
    if missing:
        raise ValueError(
            f"{where} is missing column(s) {missing}; expected the normalized columns {NORMALIZED} "
            "(use normalize_trips or read_tlc)"
        )
    ids = df["trip_id"]
    null = np.flatnonzero(ids.isna().to_numpy())
    if len(null):
        raise ValueError(f"{where} column trip_id is missing at rows {null[:5].tolist()}")
    if not pd.api.types.is_integer_dtype(ids.dtype):
        whole = pd.to_numeric(ids, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(whole) | (whole != np.round(whole)))
        if len(bad):
            raise ValueError(
                f"{where} column trip_id is not a whole number at rows {bad[:5].tolist()} "
                f"(first value {ids.iloc[bad[0]]})"
            )
    dup = np.flatnonzero(ids.duplicated(keep=False).to_numpy())
    if len(dup):
        first = ids.iloc[dup[0]]
        rows = np.flatnonzero((ids == first).to_numpy())
        raise ValueError(
            f"{where} column trip_id repeats ids ({len(dup)} rows): id {first} at rows "
            f"{rows[:5].tolist()}; ids must be unique (normalize_trips(..., start_id=...) numbers "
            "a second file after the first)"
        )


def normalize_trips(df: pd.DataFrame, *, start_id: int = 0) -> pd.DataFrame:
    """A pandas TLC-layout (or already normalized) frame as the normalized columns.

    A TLC-layout frame's rows get ``trip_id`` = ``start_id``, ``start_id`` + 1, ...; an already
    normalized frame keeps its ids, which ``check_normalized`` validates (ValueError naming the
    first rows with a missing or repeated id).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if all(c in df.columns for c in NORMALIZED):
        check_normalized(df, "df")
        return df[NORMALIZED].reset_index(drop=True)
    src = match_columns(df.columns)
    out = pd.DataFrame({"trip_id": np.arange(start_id, start_id + len(df), dtype=np.int64)})
    for norm in ("pickup_time", "dropoff_time"):
        out[norm] = pd.to_datetime(df[src[norm]].to_numpy()).astype("datetime64[us]")
    for norm in COORDS:
        out[norm] = pd.to_numeric(df[src[norm]], errors="coerce").astype(np.float64).to_numpy()
    return out


def micros(s: pd.Series) -> np.ndarray:
    """A pandas datetime Series as int64 microseconds since the epoch (naive = UTC)."""
    v = s
    if getattr(v.dt, "tz", None) is not None:
        v = v.dt.tz_convert("UTC").dt.tz_localize(None)
    return v.astype("datetime64[us]").to_numpy().astype(np.int64)
