"""Column mapping: every TLC layout with coordinates, and errors that name the missing column."""

import pandas as pd
import pytest

from fieldnotes.trips.columns import NORMALIZED, check_normalized, match_columns, normalize_trips
from fieldnotes.trips.synthetic import synthetic_trips


@pytest.mark.parametrize(
    "names",
    [
        [
            "VendorID",
            "tpep_pickup_datetime",
            "tpep_dropoff_datetime",
            "pickup_longitude",
            "pickup_latitude",
            "dropoff_longitude",
            "dropoff_latitude",
        ],
        [
            " pickup_datetime",
            " dropoff_datetime",
            " pickup_longitude",
            " pickup_latitude",
            " dropoff_longitude",
            " dropoff_latitude",
        ],
        [
            "Trip_Pickup_DateTime",
            "Trip_Dropoff_DateTime",
            "Start_Lon",
            "Start_Lat",
            "End_Lon",
            "End_Lat",
        ],
        [
            "lpep_pickup_datetime",
            "Lpep_dropoff_datetime",
            "Pickup_longitude",
            "Pickup_latitude",
            "Dropoff_longitude",
            "Dropoff_latitude",
        ],
    ],
)
def test_every_layout_maps(names):
    m = match_columns(names)
    assert set(m) == set(NORMALIZED) - {"trip_id"}
    assert all(v in names for v in m.values())


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="dropoff_lat"):
        match_columns(
            [
                "tpep_pickup_datetime",
                "tpep_dropoff_datetime",
                "pickup_longitude",
                "pickup_latitude",
                "dropoff_longitude",
            ]
        )
    with pytest.raises(ValueError, match="pickup_time"):
        match_columns(["PULocationID", "DOLocationID"])
    with pytest.raises(ValueError, match=r"\['trip_id'\]"):
        check_normalized(pd.DataFrame(columns=NORMALIZED[1:]))


def test_normalize_synthetic():
    raw = synthetic_trips(500, seed=1, days=1)
    n = normalize_trips(raw)
    assert list(n.columns) == NORMALIZED
    assert n["trip_id"].tolist() == list(range(500))
    assert (n["pickup_lat"].to_numpy() == raw["pickup_latitude"].to_numpy()).all()
    assert (n["dropoff_time"] == raw["tpep_dropoff_datetime"]).all()
    assert normalize_trips(n) is not n and normalize_trips(n).equals(n)
    with pytest.raises(TypeError, match="df must be"):
        normalize_trips([1, 2])


def test_two_files_normalized_apart_are_refused_together_and_numbered_with_start_id():
    a = normalize_trips(synthetic_trips(50, seed=1, days=1))
    b = normalize_trips(synthetic_trips(50, seed=2, days=1))
    with pytest.raises(
        ValueError, match=r"trip_id repeats ids \(100 rows\): id 0 at rows \[0, 50\]"
    ):
        normalize_trips(pd.concat([a, b], ignore_index=True))
    b2 = normalize_trips(synthetic_trips(50, seed=2, days=1), start_id=len(a))
    both = normalize_trips(pd.concat([a, b2], ignore_index=True))
    assert both["trip_id"].tolist() == list(range(100))


def test_fractional_ids_are_refused():
    a = normalize_trips(synthetic_trips(5, seed=1, days=1)).assign(trip_id=[0, 1, 2.5, 3, 4])
    with pytest.raises(ValueError, match=r"not a whole number at rows \[2\]"):
        check_normalized(a)
