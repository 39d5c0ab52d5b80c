"""The chapter's figures draw what they say (checked on the artists, not by eye)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fieldnotes.robot.field import make_field  # noqa: E402
from fieldnotes.robot.figures import plot_field, plot_gallery, plot_row_steps  # noqa: E402
from fieldnotes.robot.plants import make_flower_dataset  # noqa: E402
from fieldnotes.robot.row_detector import Camera  # noqa: E402


def test_field_map_shows_every_plant_and_weed():
    f = make_field(rows=3, plants_per_row=6, seed=1)
    ax = plot_field(f)
    n_points = sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets"))
    assert n_points == f.n_plants + len(f.weed_xy)
    assert "m" in ax.get_xlabel() and "m" in ax.get_ylabel()
    plt.close("all")


def test_gallery_has_both_classes():
    x, y = make_flower_dataset(20, seed=1)
    fig = plot_gallery(x, y, per_class=4)
    assert len([a for a in fig.axes if a.images]) == 8
    plt.close(fig)


def test_row_steps_on_a_synthetic_frame():
    img = np.zeros((96, 128, 3), np.uint8)
    img[...] = (115, 85, 56)
    for top in range(20, 90, 14):  # plants standing on soil in a line: a row on the left
        img[top : top + 8, 20:30] = (40, 150, 40)
    fig, est = plot_row_steps(img, Camera(), 1.2)
    assert len(fig.axes) >= 4 and est.n_left + est.n_right > 0
    plt.close(fig)


def test_animation_html_requests_nothing_off_the_machine():
    import re

    from matplotlib.animation import FuncAnimation

    from fieldnotes.robot.figures import animation_html

    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 1])
    anim = FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=3)
    html = animation_html(anim, fps=4)
    plt.close(fig)
    assert not re.search(r"https?://", html), "the player still links to the network"
    assert "fa fa-" not in html, "an icon was left to Font Awesome"
    assert "\u25b6" in html and "data:image/jpeg;base64" in html


def test_square_paths_are_drawn_with_their_starts():
    from fieldnotes.robot.figures import plot_paths

    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], float)
    fig = plot_paths({"ideal": square, "drifted": square + 0.1}, title="t")
    ax = fig.axes[0]
    assert len(ax.lines) == 4  # a path and a start marker each
    assert ax.lines[0].get_xydata().tolist() == square[:, :2].tolist()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ideal", "drifted"]
    assert "(m)" in ax.get_xlabel() and "(m)" in ax.get_ylabel()
    plt.close(fig)


def test_training_curve_shows_loss_and_error_per_epoch():
    from fieldnotes.robot.classifier import TrainLog
    from fieldnotes.robot.figures import plot_training

    fig = plot_training(TrainLog(loss=[0.7, 0.3, 0.1], train_accuracy=[0.6, 0.9, 0.95]))
    ax = fig.axes[0]
    loss, error = ax.lines
    assert list(loss.get_xdata()) == [1, 2, 3] and list(loss.get_ydata()) == [0.7, 0.3, 0.1]
    assert np.allclose(error.get_ydata(), [0.4, 0.1, 0.05])
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_confusion_matrix_writes_each_count():
    import pytest

    from fieldnotes.robot.figures import plot_confusion

    fig = plot_confusion(np.array([[40, 2], [5, 53]]))
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["2", "40", "5", "53"]
    plt.close(fig)
    with pytest.raises(ValueError, match="cm"):
        plot_confusion(np.zeros((3, 3), int))


def test_reliability_diagram_skips_empty_bins():
    from fieldnotes.robot.classifier import expected_calibration_error
    from fieldnotes.robot.figures import plot_calibration

    prob = np.array([0.95, 0.9, 0.1, 0.8, 0.3, 0.97])
    truth = np.array([1, 1, 0, 0, 0, 1])
    ece, table = expected_calibration_error(prob, truth)
    fig = plot_calibration(table, ece)
    _, cnn = fig.axes[0].lines
    assert len(cnn.get_xdata()) == int((table[:, 3] > 0).sum())
    assert f"{ece:.3f}" in fig.axes[0].get_title()
    plt.close(fig)


def test_localisation_plot_draws_both_paths():
    from types import SimpleNamespace

    from fieldnotes.robot.field import make_field
    from fieldnotes.robot.figures import plot_localisation

    f = make_field(rows=2, plants_per_row=4)
    t = np.linspace(0, 1, 5)
    traj = np.stack([t, t, t, t, t * 0, t + 0.1, t, t], axis=1)
    ax = plot_localisation(f, SimpleNamespace(trajectory=traj, localisation_rmse_m=0.1))
    assert len(ax.lines) == 2 and "0.10 m" in ax.get_title()
    assert ax.get_xlabel() == "x (m)"
    with pytest.raises(ValueError, match="trajectory"):
        plot_localisation(f, SimpleNamespace(trajectory=traj[:, :5], localisation_rmse_m=0.1))
    plt.close("all")
