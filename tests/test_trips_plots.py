"""The chapter's figures draw what they say, with labelled axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fieldnotes.trips.columns import normalize_trips  # noqa: E402
from fieldnotes.trips.plots import plot_benchmark, plot_demand, plot_neighbourhood  # noqa: E402
from fieldnotes.trips.synthetic import synthetic_trips  # noqa: E402


def test_figures():
    trips = normalize_trips(synthetic_trips(5000, seed=1, days=1))
    for ax in (plot_demand(trips), plot_neighbourhood(trips, 90.0, lat=40.7505, lon=-73.9934)):
        assert "degrees" in ax.get_xlabel() and "degrees" in ax.get_ylabel()
    ax = plot_neighbourhood(trips, 90.0, lat=40.7505, lon=-73.9934)
    shaded = [p for p in ax.patches if p.get_fill()]
    assert len(shaded) == 9  # the 3x3 neighbourhood
    table = pd.DataFrame(
        {"N": [10, 100, 10, 100], "engine": ["a", "a", "b", "b"], "seconds": [1.0, 2.0, 0.5, 4.0]}
    )
    ax = plot_benchmark(table)
    assert len(ax.get_lines()) == 2 and ax.get_xscale() == "log"
    assert "Spark the action" in ax.get_ylabel() and "(s)" in ax.get_ylabel()
    plt.close("all")


def test_calibration_figure():
    from fieldnotes.trips.plots import plot_calibration

    calib = pd.DataFrame(
        {
            "seed": [1, 1, 2, 2],
            "r (m)": [20.0, 90.0, 20.0, 90.0],
            "month estimate": [1e5, 4e6, 3e5, 5e6],
            "published": [2e5, 3.9e6, 2e5, 3.9e6],
        }
    )
    ax = plot_calibration(calib)
    assert len(ax.patches) == 4 and ax.get_yscale() == "log"
    assert [p.get_height() for p in ax.patches[:2]] == [2e5, 4.5e6]  # medians over the seeds
    with pytest.raises(ValueError, match="month estimate"):
        plot_calibration(calib.drop(columns="month estimate"))
    assert "(m)" in ax.get_xlabel() and "count" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20", "90"]
    plt.close("all")
