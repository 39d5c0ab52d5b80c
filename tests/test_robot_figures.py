"""The chapter's figures draw what they say (checked on the artists, not by eye)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fieldnotes.robot.field import make_field  # noqa: E402
from fieldnotes.robot.figures import plot_field, plot_gallery, plot_row_steps  # noqa: E402
from fieldnotes.robot.plants import make_flower_dataset  # noqa: E402
from fieldnotes.robot.vision import Camera  # noqa: E402


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
    img[20:96, 20:30] = (40, 150, 40)  # a green stripe: a row on the left
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
