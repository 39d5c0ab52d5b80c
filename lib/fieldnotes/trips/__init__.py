"""Chapter 3: return trips in NYC taxi data, from a Spark cross join to keyed grid joins.

Spark and DuckDB are imported inside the functions that use them, so importing this is fast.
"""

from fieldnotes.trips.cluster import LocalCluster, start_local_cluster
from fieldnotes.trips.columns import NORMALIZED, normalize_trips
from fieldnotes.trips.duck import DuckRun, return_trips_duckdb, timed_duckdb, usable_counts_duckdb
from fieldnotes.trips.geo import EARTH_RADIUS_M, cell_size_deg, haversine_m
from fieldnotes.trips.join import (
    METHODS,
    TripScan,
    candidate_pairs,
    return_trips,
    scan_trips,
)
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.session import spark_session, to_spark
from fieldnotes.trips.synthetic import (
    FEB2016_TRIPS,
    REAL_FEB2016,
    DemandConfig,
    iter_synthetic_days,
    synthetic_trips,
    write_synthetic_parquet,
)
from fieldnotes.trips.tlc import TLCLoad, read_tlc
from fieldnotes.trips.usable import RULES

__all__ = [
    "EARTH_RADIUS_M",
    "FEB2016_TRIPS",
    "METHODS",
    "NORMALIZED",
    "REAL_FEB2016",
    "RULES",
    "DemandConfig",
    "DuckRun",
    "LocalCluster",
    "TLCLoad",
    "TripScan",
    "candidate_pairs",
    "cell_size_deg",
    "haversine_m",
    "iter_synthetic_days",
    "normalize_trips",
    "planted_trips",
    "read_tlc",
    "return_trips",
    "return_trips_duckdb",
    "return_trips_exact",
    "scan_trips",
    "spark_session",
    "start_local_cluster",
    "synthetic_trips",
    "timed_duckdb",
    "to_spark",
    "usable_counts_duckdb",
    "write_synthetic_parquet",
]
