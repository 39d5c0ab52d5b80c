"""The calibration counts pairs across midnight, splits them from within-day pairs, and repeats
over seeds; the oracle's distances give the counts at every smaller radius."""

import pandas as pd
import pytest

from fieldnotes.trips import calibration
from fieldnotes.trips.calibration import calibrate, generated_days, month_pairs
from fieldnotes.trips.columns import normalize_trips
from fieldnotes.trips.oracle import return_trip_distances, return_trips_exact
from fieldnotes.trips.synthetic import synthetic_trips


def two_trips(drop: str, pick: str) -> pd.DataFrame:
    """Trip 0 ends at ``drop``, trip 1 (its return, 10 m away at both ends) starts at ``pick``."""
    return pd.DataFrame(
        {
            "trip_id": [0, 1],
            "pickup_time": pd.to_datetime(["2016-02-01 20:00", pick]),
            "dropoff_time": pd.to_datetime([drop, "2016-02-02 03:00"]),
            "pickup_lat": [40.75, 40.7001],
            "pickup_lon": [-73.99, -73.95],
            "dropoff_lat": [40.70, 40.7501],
            "dropoff_lon": [-73.95, -73.99],
        }
    )


def test_a_return_after_midnight_is_counted_as_crossing():
    across = month_pairs(two_trips("2016-02-01 23:30", "2016-02-02 00:30"), [20.0], days=2)
    assert across[["pairs", "within a day", "across midnight"]].values.tolist() == [[1, 0, 1]]
    assert across["month estimate"].iloc[0] == pytest.approx(28.0)
    within = month_pairs(two_trips("2016-02-01 21:00", "2016-02-01 23:00"), [20.0], days=2)
    assert within[["within a day", "across midnight"]].values.tolist() == [[1, 0]]
    assert within["month estimate"].iloc[0] == pytest.approx(29 / 2)


def test_counts_per_radius_equal_the_oracle_and_some_cross_midnight():
    trips = normalize_trips(synthetic_trips(30_000, seed=6, days=3))
    radii = [20.0, 90.0, 150.0]
    got = month_pairs(trips, radii, days=3).set_index("r (m)")
    kept = generated_days(trips, 3)
    assert 0 < len(trips) - len(kept) < 0.05 * len(trips)  # the last day's spill
    for r in radii:
        assert got.loc[r, "pairs"] == len(return_trips_exact(kept, r))
        assert got.loc[r, "pairs"] == got.loc[r, "within a day"] + got.loc[r, "across midnight"]
    assert got.loc[150.0, "across midnight"] > 0
    far = return_trip_distances(kept, 150.0)
    assert (far["distance_m"] < 150.0).all()
    pd.testing.assert_frame_equal(
        far[far["distance_m"] < 90.0][["a_id", "b_id"]].reset_index(drop=True),
        return_trips_exact(kept, 90.0),
    )


def test_a_return_after_the_last_generated_midnight_is_not_a_crossing():
    # two generated days: 1 and 2 February; the return is picked up on the 3rd, not generated
    spill = two_trips("2016-02-02 23:30", "2016-02-03 00:30")
    spill.loc[0, "pickup_time"] = pd.Timestamp("2016-02-01 20:00")
    got = month_pairs(spill, [20.0], days=2)
    assert got[["pairs", "within a day", "across midnight"]].values.tolist() == [[0, 0, 0]]
    assert generated_days(spill, 2)["trip_id"].tolist() == [0]
    assert month_pairs(spill, [20.0], days=3)["across midnight"].tolist() == [1]


def test_generated_trips_cross_only_the_generated_midnights():
    trips = normalize_trips(synthetic_trips(20_000, seed=8, days=2))
    kept = generated_days(trips, 2)
    first = kept["pickup_time"].min().normalize()
    assert (kept["pickup_time"] < first + pd.Timedelta(days=2)).all()
    assert (trips["pickup_time"] >= first + pd.Timedelta(days=2)).any()  # the spill exists
    got = month_pairs(trips, [150.0], days=2).iloc[0]
    day = kept.set_index("trip_id")
    pairs = return_trips_exact(kept, 150.0)
    a_drop = day.loc[pairs["a_id"], "dropoff_time"].dt.normalize().to_numpy()
    b_pick = day.loc[pairs["b_id"], "pickup_time"].dt.normalize().to_numpy()
    one_midnight = (a_drop == first.to_datetime64()) & (
        b_pick == (first + pd.Timedelta(days=1)).to_datetime64()
    )
    assert got["across midnight"] == int(one_midnight.sum()) > 0
    assert got["within a day"] == int((a_drop == b_pick).sum())


def test_calibrate_repeats_over_seeds(monkeypatch):
    monkeypatch.setattr(calibration, "FEB2016_TRIPS", 29 * 3_000)  # a small city, same code
    out = calibrate([1, 2], 2, [20.0, 90.0, 45.0])
    assert out["seed"].tolist() == [1, 1, 1, 2, 2, 2]
    assert out["r (m)"].tolist() == [20.0, 45.0, 90.0] * 2
    assert out["published"].isna().tolist() == [False, True, False] * 2
    pub = out.dropna(subset=["published"])
    assert (pub["ratio"] == pub["month estimate"] / pub["published"]).all()
    assert not out.query("seed == 1")["pairs"].equals(
        out.query("seed == 2")["pairs"].reset_index(drop=True)
    )


def test_calibrate_arguments_are_checked():
    with pytest.raises(ValueError, match="days must be an integer >= 2"):
        calibrate([1], 1, [90.0])
    with pytest.raises(ValueError, match="seeds is empty"):
        calibrate([], 2, [90.0])
    with pytest.raises(ValueError, match="radii is empty"):
        calibrate([1], 2, [])
