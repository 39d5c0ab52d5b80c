"""The breeding plot: pattern parsing, row lines, plant positions, gaps and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.robot.field import (
    FEMALE,
    MALE,
    PLANT_RADIUS_M,
    ROBOT_WIDTH_M,
    make_field,
    parse_pattern,
    row_lines,
)


@given(st.integers(0, 9), st.integers(0, 9))
def test_pattern_round_trip(f, m):
    if f + m == 0:
        with pytest.raises(ValueError, match="pattern"):
            parse_pattern(f"{f}:{m}")
    else:
        assert parse_pattern(f"{f}:{m}") == (f, m)
        assert parse_pattern(f" {f} : {m} ") == (f, m)


@pytest.mark.parametrize("bad", ["2-1", "2:", ":1", "a:b", "2:1:1", "", "-1:2"])
def test_pattern_that_does_not_parse_names_the_argument(bad):
    with pytest.raises(ValueError, match="pattern"):
        parse_pattern(bad)
    with pytest.raises(ValueError, match="pattern"):
        make_field(rows=3, pattern=bad)


def test_pattern_must_be_a_string():
    with pytest.raises(TypeError, match="pattern"):
        parse_pattern(21)


def test_two_to_one_pattern_repeats_from_the_first_row():
    assert row_lines(7, "2:1").tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert row_lines(4, "1:1").tolist() == [FEMALE, MALE, FEMALE, MALE]
    assert row_lines(3, "0:1").tolist() == [MALE] * 3


@given(st.integers(1, 40), st.integers(0, 5), st.integers(0, 5))
def test_row_lines_follow_the_pattern_fractions(n, f, m):
    if f + m == 0:
        return
    lines = row_lines(n, f"{f}:{m}")
    full = n // (f + m)
    assert (lines == MALE).sum() >= full * m
    assert (lines == FEMALE).sum() >= full * f


@pytest.mark.parametrize("rows", [0, -3])
def test_rows_must_be_positive(rows):
    with pytest.raises(ValueError, match="rows"):
        make_field(rows=rows)


def test_row_spacing_narrower_than_the_robot_is_refused():
    with pytest.raises(ValueError, match="row_spacing"):
        make_field(rows=3, row_spacing=ROBOT_WIDTH_M - 0.01)
    # wider than the chassis but not than chassis + stems: the robot would hit every plant
    with pytest.raises(ValueError, match="row_spacing"):
        make_field(rows=3, row_spacing=ROBOT_WIDTH_M + PLANT_RADIUS_M)
    make_field(rows=3, row_spacing=ROBOT_WIDTH_M + 2 * PLANT_RADIUS_M + 0.01)  # just fits


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(2, 30),
    st.floats(0.85, 2.0),
    st.integers(0, 2**31 - 1),
    st.floats(0, 0.3),
)
def test_plants_sit_on_their_rows_with_bounded_jitter(rows, ppr, spacing, seed, gaps):
    f = make_field(
        rows=rows,
        plants_per_row=ppr,
        row_spacing=spacing,
        seed=seed,
        gap_fraction=gaps,
        jitter=0.03,
    )
    assert f.n_plants + f.gaps == rows * ppr
    nominal = f.plant_row * spacing
    assert np.all(np.abs(f.plant_xy[:, 0] - nominal) <= 3 * 0.03 + 1e-12)
    assert np.all((f.plant_xy[:, 1] > -0.1) & (f.plant_xy[:, 1] < f.row_length_m + 0.1))
    assert np.array_equal(f.plant_label, f.lines[f.plant_row])
    assert len(f.plant_seed) == f.n_plants


def test_same_seed_same_field_and_different_seed_different_field():
    a, b, c = make_field(seed=5), make_field(seed=5), make_field(seed=6)
    assert np.array_equal(a.plant_xy, b.plant_xy) and np.array_equal(a.weed_xy, b.weed_xy)
    assert a.plant_xy.shape != c.plant_xy.shape or not np.allclose(a.plant_xy, c.plant_xy)


def test_table_has_one_row_per_plant():
    f = make_field(rows=3, plants_per_row=5, seed=1)
    t = f.table()
    assert len(t) == f.n_plants
    assert set(t["line"]) <= {"female", "male"}


def test_off_types_are_fertile_plants_in_female_rows_and_leave_the_layout_alone():
    plain = make_field(rows=6, plants_per_row=40, seed=3)
    mixed = make_field(rows=6, plants_per_row=40, seed=3, off_type_fraction=0.1)
    assert np.array_equal(plain.plant_xy, mixed.plant_xy)
    assert np.array_equal(plain.plant_seed, mixed.plant_seed)
    assert not plain.off_types.any()
    off = mixed.off_types
    assert 0 < off.sum() < 0.25 * (mixed.lines[mixed.plant_row] == 0).sum()
    assert (mixed.lines[mixed.plant_row[off]] == 0).all() and (mixed.plant_label[off] == 1).all()
    with pytest.raises(ValueError, match="off_type_fraction"):
        make_field(off_type_fraction=1.0)


@pytest.mark.parametrize("name", ["jitter", "weeds_per_row"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1])
def test_a_nan_or_negative_jitter_or_weed_rate_is_refused(name, bad):
    # NaN used to slip past a `< 0` check: NaN plant coordinates, or silently no weeds
    with pytest.raises(ValueError, match=name):
        make_field(**{name: bad})
