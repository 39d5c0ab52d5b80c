"""Great-circle geometry: haversine against known distances, cell sizes as exact bounds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.trips.geo import (
    EARTH_RADIUS_M,
    band_lon_cells,
    cell_size_deg,
    check_radius,
    destination,
    haversine_m,
    lat_cell_deg,
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


def lon_cell(lon, band, r, factor):
    """(cell index, position inside the cell in [0, 1), cells) of ``lon`` in ``band``'s grid."""
    n = int(band_lon_cells(band, r, factor=factor))
    x = (lon + 180.0) * n / 360.0
    return int(np.floor(x)) % n, x - np.floor(x), n


@settings(max_examples=400, deadline=None)
@given(
    st.floats(-90, 90),
    st.floats(-180, 180, exclude_max=True),
    st.floats(1, 10_000),
    st.floats(0, 360),
    st.floats(0.0, 0.999999),
    st.sampled_from([1.0, 2.0]),
)
def test_band_cells_find_every_close_pair(lat, lon, r, bearing, frac, factor):
    # a point q within r of p lies in p's band or the next, and in q's band's grid within one
    # cell of p (grid); with cells twice as wide, in p's cell or the one towards p's quadrant
    lat2, lon2 = destination(lat, lon, bearing, frac * r)
    h = lat_cell_deg(r, factor=factor)
    bp, bq = math.floor(lat / h), math.floor(lat2 / h)
    assert abs(bp - bq) <= 1
    cp, pos, n = lon_cell(lon, bq, r, factor)
    cq, _, _ = lon_cell(lon2, bq, r, factor)
    if factor == 1.0:
        assert cq in {(cp - 1) % n, cp, (cp + 1) % n}
    else:
        assert cq in {cp, (cp + (1 if pos >= 0.5 else -1)) % n}


def test_band_cells_shrink_towards_the_poles():
    r = 90.0
    h = lat_cell_deg(r)
    bands = np.array([0, math.floor(40.75 / h), math.floor(80 / h), math.floor(89.9 / h)])
    n = band_lon_cells(bands, r)
    assert (np.diff(n) < 0).all()
    assert band_lon_cells(math.floor(90 / h), r) == 1 == band_lon_cells(math.floor(-90 / h), r)
    # at the equator a cell is about r wide: 360 degrees over (r / R radians) cells
    assert n[0] == pytest.approx(2 * math.pi * EARTH_RADIUS_M / r, rel=1e-3)


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
    with pytest.raises(ValueError, match="lat must be"):
        cell_size_deg(50, 90.5)
