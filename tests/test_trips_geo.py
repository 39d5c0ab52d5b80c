"""Great-circle geometry: haversine against known distances, cell sizes as exact bounds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.trips.geo import (
    EARTH_RADIUS_M,
    cell_size_deg,
    check_radius,
    destination,
    haversine_m,
    lon_cells,
)


def test_haversine_known_values():
    # one degree of latitude on a 6,371 km sphere is pi*R/180 = 111,194.93 m
    assert haversine_m(40.0, -74.0, 41.0, -74.0) == pytest.approx(math.pi * EARTH_RADIUS_M / 180)
    # a quarter of the equator
    assert haversine_m(0.0, 0.0, 0.0, 90.0) == pytest.approx(math.pi * EARTH_RADIUS_M / 2)
    # JFK (terminals) to LaGuardia (terminals), about 16.1 km on this sphere
    assert haversine_m(40.6441, -73.7822, 40.7730, -73.8702) == pytest.approx(16_110, rel=0.01)
    assert haversine_m(40.7, -73.9, 40.7, -73.9) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-70, 70),
    st.floats(-179, 179),
    st.floats(0, 360),
    st.floats(0.5, 10_000),
)
def test_destination_inverts_haversine(lat, lon, bearing, d):
    lat2, lon2 = destination(lat, lon, bearing, d)
    assert haversine_m(lat, lon, lat2, lon2) == pytest.approx(d, rel=1e-7, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0, 80),
    st.floats(1, 10_000),
    st.floats(0, 360),
    st.floats(0.0, 0.999999),
)
def test_cells_bound_every_close_pair(lat, r, bearing, frac):
    # any point within r of p differs from it by less than one cell height/width
    dlat, dlon = cell_size_deg(r, min(89 - 1e-9, abs(lat) + 1.0))
    lat2, lon2 = destination(lat, -73.0, bearing, frac * r)
    if abs(lat2) > abs(lat) + 1.0:
        return
    assert abs(lat2 - lat) < dlat
    assert abs(lon2 + 73.0) < dlon


def test_cos_latitude_alone_is_not_a_bound():
    # the great circle between two points on a parallel is shorter than the parallel itself:
    # a longitude gap of r / (R cos(lat)) radians spans less than r on the sphere at high latitude
    lat, r = 60.0, 10_000.0
    naive = math.degrees(r / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    assert haversine_m(lat, 0.0, lat, naive) < r
    assert cell_size_deg(r, lat)[1] > naive


def test_check_radius_rejects_bad_values():
    for bad in (0, -1.0, 10_000.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="r must be"):
            check_radius(bad)
    with pytest.raises(TypeError, match="r must be"):
        check_radius("50")
    assert check_radius(np.float32(50)) == 50.0
    with pytest.raises(ValueError, match="max_abs_lat"):
        cell_size_deg(50, 89.5)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-4, 60))
def test_lon_cells_wrap_at_least_as_wide(width):
    n = lon_cells(width)
    assert 360.0 / n >= width and 360.0 / (n + 2) < width  # at most one cell given up
    assert n % 4096 != 1  # a wrapped neighbour never shares its packed 12-bit field


def test_lon_cells_refuses_too_few():
    with pytest.raises(ValueError, match="under 4"):
        lon_cells(100.0)
    assert lon_cells(360.0 / 4097) == 4096
