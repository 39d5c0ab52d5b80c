"""Flower close-ups: shapes, determinism, balance, and that the class lives in the anthers."""

import numpy as np
import pytest

from fieldnotes.robot.field import make_field
from fieldnotes.robot.plants import flower_image, make_flower_dataset, plant_image


def test_image_shape_and_dtype():
    img = flower_image(1, np.random.default_rng(0), size=80)
    assert img.shape == (80, 80, 3) and img.dtype == np.uint8


def test_same_generator_state_same_image():
    a = flower_image(0, np.random.default_rng(3))
    b = flower_image(0, np.random.default_rng(3))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("label", [2, -1, "male"])
def test_bad_label(label):
    with pytest.raises(ValueError, match="label"):
        flower_image(label, np.random.default_rng(0))


@pytest.mark.parametrize("size", [16, 1000])
def test_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        flower_image(0, np.random.default_rng(0), size=size)


def test_dataset_is_balanced_and_reproducible():
    x1, y1 = make_flower_dataset(50, seed=4)
    x2, y2 = make_flower_dataset(50, seed=4)
    assert y1.sum() == 25
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    with pytest.raises(ValueError, match="n must"):
        make_flower_dataset(0, seed=1)


def _orange_centre_fraction(images):
    """Fraction of centre pixels that are saturated orange-yellow (fertile anthers, pollen)."""
    c = images[:, 16:48, 16:48].astype(float) / 255
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    orange = (r > 0.55) & (g > 0.3) & (b < 0.35 * r) & (g < 0.86 * r)
    return orange.reshape(len(images), -1).mean(1)


def test_fertile_flowers_show_more_anther_colour_at_the_centre():
    x, y = make_flower_dataset(300, seed=11)
    frac = _orange_centre_fraction(x)
    assert frac[y == 1].mean() > 1.5 * frac[y == 0].mean()


def test_plant_image_is_fixed_per_plant_and_follows_its_label():
    f = make_field(rows=3, plants_per_row=6, seed=2)
    a, b = plant_image(f, 4), plant_image(f, 4)
    assert np.array_equal(a, b)
    assert not np.array_equal(plant_image(f, 4), plant_image(f, 5))
    with pytest.raises(ValueError, match="plant"):
        plant_image(f, f.n_plants)
