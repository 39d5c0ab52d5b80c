"""χ, the skid-steer expansion factor, measured on the simulated Husky."""

import pytest

from fieldnotes.robot.calibration import measure_track_factor, track_factor_table
from fieldnotes.robot.drive import HUSKY_SIM


def test_chi_is_measured_and_varies_with_turn_rate():
    table = track_factor_table([0.0, 0.6], [0.3, 0.8])
    assert table.shape == (2, 2)
    assert (table.to_numpy() > 1.5).all()  # a skid-steer turn always needs more than the ideal
    # the model's one number lies within what was measured, and a slow turn needs more
    assert table.to_numpy().min() <= HUSKY_SIM.track_factor <= table.to_numpy().max()
    assert (table[0.3] > table[0.8]).all()
    # turning the other way is the same robot
    assert measure_track_factor(0.3, -0.8) == pytest.approx(
        measure_track_factor(0.3, 0.8), rel=0.05
    )


def test_bad_calibration_inputs():
    with pytest.raises(ValueError, match="turn_rate_radps"):
        measure_track_factor(0.3, 0.0)
    with pytest.raises(ValueError, match="speed_mps"):
        measure_track_factor(float("nan"), 0.5)
    with pytest.raises(ValueError, match="at least one"):
        track_factor_table([], [0.5])


def test_the_trend_in_words_follows_the_numbers():
    from fieldnotes.robot.calibration import describe_trend

    assert describe_trend([4.4, 3.0, 2.1, 2.5]).startswith(
        "it falls"
    ) and "again" in describe_trend([4.4, 3.0, 2.1, 2.5])
    assert describe_trend([3.0, 2.0, 1.5]) == "it falls as the turn rate rises"
    assert describe_trend([1.0, 2.0, 3.0]) == "it rises with the turn rate"
    assert describe_trend([2.0, 2.01, 2.0]) == "it is about the same at every turn rate"
    assert "falls again" in describe_trend([1.0, 2.0, 1.2])
    with pytest.raises(ValueError, match="values"):
        describe_trend([1.0])


def test_summary_of_a_chi_table():
    import pandas as pd

    from fieldnotes.robot.calibration import summarise_track_factor

    table = pd.DataFrame(
        [[4.0, 2.0, 2.4], [4.4, 2.2, 2.6]], index=[0.0, 0.6], columns=[0.3, 0.8, 1.2]
    )
    s = summarise_track_factor(table, 0.8, model=2.5)
    assert (s["chi_min"], s["chi_max"]) == (2.0, 4.4)
    assert s["chi_headland"] == pytest.approx(2.1) and s["chi_fastest"] == pytest.approx(2.5)
    assert s["chi_speed_effect"] == pytest.approx(0.4 / 4.2)
    assert "rises again" in s["chi_shape"]
    with pytest.raises(ValueError, match="headland_rate"):
        summarise_track_factor(table, 0.5, model=2.5)


def test_slide_summary_gives_each_direction_s_mean_and_the_spread():
    import numpy as np

    from fieldnotes.robot.calibration import slide_summary

    left = np.array([[-0.4, 0.3], [-0.3, 0.28]])
    right = np.array([[-0.38, -0.3], [-0.38, -0.32]])
    s = slide_summary({1: left, -1: right})
    assert s["slide_left_ahead_m"] == pytest.approx(-0.35)
    assert s["slide_right_left_m"] == pytest.approx(-0.31)
    assert s["slide_repeat_cm"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="keyed"):
        slide_summary({1: left})
