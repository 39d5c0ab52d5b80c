"""The image-dependence control: shuffled scans leave no scan in place, a model that ignores the
image loses nothing on them and the page's sentence says so, and bad input is named."""

import numpy as np
import pytest
import torch

from fieldnotes.vlm.controls import dependence_findings, image_dependence, shuffled_features


def test_shuffled_features_move_every_scan_and_are_seeded():
    feats = torch.arange(7 * 3, dtype=torch.float32).reshape(7, 3, 1)
    out = shuffled_features(feats, 0)
    assert out.shape == feats.shape
    assert sorted(out[:, 0, 0].tolist()) == sorted(feats[:, 0, 0].tolist())  # a permutation
    assert (out[:, 0, 0] != feats[:, 0, 0]).all()  # no scan keeps its own tokens
    assert torch.equal(out, shuffled_features(feats, 0))
    assert not torch.equal(out, shuffled_features(feats, 1))
    assert (shuffled_features(feats[:2], 5)[:, 0, 0] == torch.tensor([3.0, 0.0])).all()
    with pytest.raises(ValueError, match="at least 2 scans"):
        shuffled_features(feats[:1], 0)


def _correct(acc_by_cell, q=100, steps=(5, 10)):
    return {
        (*cell, b): (np.arange(q) < acc * q).astype(float)
        for cell, acc in acc_by_cell.items()
        for b in steps
    }


def test_a_model_that_ignores_the_image_loses_nothing():
    cells = {("general", "medical", "qformer", 0): 0.4, ("medical", "medical", "qformer", 0): 0.5}
    correct = _correct(cells)
    same = {cell: correct[(*cell, 10)].copy() for cell in cells}
    t = image_dependence(correct, same)
    assert list(t["steps"]) == [10, 10] and (t["drop (points)"] == 0).all()
    words = dependence_findings(t)
    assert words["shuffle_unmoved"] == 2 and words["shuffle_cells"] == 2
    assert words["shuffle_use"].startswith("none of the 2 cells lost anything")


def test_a_model_that_uses_the_image_drops_and_bad_input_is_named():
    cells = {("general", "medical", "qformer", 0): 0.4, ("medical", "medical", "qformer", 0): 0.5}
    correct = _correct(cells)
    worse = {cell: (np.arange(100) < 20).astype(float) for cell in cells}
    t = image_dependence(correct, worse)
    assert list(t["drop (points)"]) == pytest.approx([20.0, 30.0])
    words = dependence_findings(t)
    assert words["shuffle_min"] == pytest.approx(20) and words["shuffle_mean"] == pytest.approx(25)
    assert (
        words["shuffle_use"]
        == "2 of the 2 cells got worse, so at least those use the scan they are shown"
    )
    better = {cell: np.ones(100) for cell in cells}
    assert (
        "no cell got worse" in dependence_findings(image_dependence(correct, better))["shuffle_use"]
    )
    with pytest.raises(ValueError, match="shuffled is empty"):
        image_dependence(correct, {})
    with pytest.raises(ValueError, match="3 shuffled records for 100 questions"):
        image_dependence(correct, {next(iter(cells)): np.ones(3)})
    with pytest.raises(ValueError, match="table is empty"):
        dependence_findings(t.iloc[:0])
