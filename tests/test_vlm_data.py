"""Synthetic scans: determinism, ranges, ground truth consistent with the pixels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.vlm.data import CT_WINDOW_HU, FINDINGS, HU, MODALITIES, make_scan, make_scans


@given(seed=st.integers(0, 2**31), size=st.sampled_from([32, 64, 96]))
@settings(max_examples=25, deadline=None)
def test_scan_is_deterministic_in_range_and_consistent(seed, size):
    a, b = make_scan(seed, size), make_scan(seed, size)
    assert np.array_equal(a.image, b.image)
    assert a.image.shape == (size, size) and a.image.dtype == np.float32
    assert 0.0 <= a.image.min() and a.image.max() <= 1.0
    assert a.modality in MODALITIES and a.finding in FINDINGS[a.modality]
    if a.finding == "none":
        assert (a.side, a.organ, a.location, a.size) == (None, None, None, None)
    else:
        assert a.location is not None and a.organ is not None
        if a.side is not None:
            assert a.location.startswith(a.side)
    assert (a.size is None) == (a.finding not in ("nodule", "tumour"))


def test_splits_by_seed_do_not_overlap_and_cover_everything():
    train, test = make_scans(200, 1), make_scans(50, 2)
    train_hashes = {s.image.tobytes() for s in train}
    assert not any(s.image.tobytes() in train_hashes for s in test)
    combos = {(s.modality, s.finding) for s in train}
    assert combos == {(m, f) for m, fs in FINDINGS.items() for f in fs}


def test_ct_window_maps_lung_and_bone_where_expected():
    level, width = CT_WINDOW_HU
    lung = (HU["lung"] - (level - width / 2)) / width
    s = make_scan(5, 64, "ct", "none")
    # the darkest body pixels are lung (~0.16), the brightest bone (saturated at 1)
    body = s.image[s.image > 0.08]
    assert abs(np.median(body[body < 0.4]) - lung) < 0.05
    assert s.image.max() == 1.0


@pytest.mark.parametrize("side,sign", [("left", 1), ("right", -1)])
def test_lesion_side_follows_radiological_convention(side, sign):
    # patient left is image right: a left lesion raises intensity on the x > 0 half more than x < 0
    for seed in range(40):
        s = make_scan(seed, 64, "mri", "tumour")
        if s.side != side:
            continue
        n = make_scan(seed, 64, "mri", "none")
        diff = np.abs(s.image.astype(float) - n.image.astype(float))
        right_half, left_half = diff[:, 32:].sum(), diff[:, :32].sum()
        assert (right_half - left_half) * sign > 0
        return
    pytest.fail(f"no {side} tumour in 40 seeds")


def test_large_lesions_are_larger_than_small_ones():
    small = [make_scan(i, 64, "ct", "nodule") for i in range(60)]
    mm = {k: [s.size_mm for s in small if s.size == k] for k in ("small", "large")}
    assert max(mm["small"]) < min(mm["large"])


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="modality"):
        make_scan(0, 64, "pet")
    with pytest.raises(ValueError, match="finding"):
        make_scan(0, 64, "mri", "fracture")
    with pytest.raises(ValueError, match="size"):
        make_scan(0, 8)
    with pytest.raises(ValueError, match="n must"):
        make_scans(-1, 0)
