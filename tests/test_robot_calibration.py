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
