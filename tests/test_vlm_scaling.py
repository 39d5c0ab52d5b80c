"""Data scaling: noisy captions are a true permutation of the chosen share, the findings say what the
table says."""

from types import SimpleNamespace

import pandas as pd
import pytest

from fieldnotes.vlm import pipeline as vp
from fieldnotes.vlm.fusion import BLIND
from fieldnotes.vlm.pipeline import get_size
from fieldnotes.vlm.scaling import (
    check_scaling_pairs,
    data_scaling,
    noisy_captions,
    scaling_baselines,
    scaling_findings,
)
from fieldnotes.vlm.seeds import derive_seed


def test_noisy_captions_swap_exactly_the_share_and_keep_the_rest():
    caps = [f"caption {i}" for i in range(40)]
    same, source = noisy_captions(caps, 0.0, 0)
    assert same == caps and list(source) == list(range(40))
    noisy, source = noisy_captions(caps, 0.5, 3)
    moved = [i for i in range(40) if source[i] != i]
    assert (
        len(moved) == 20 and sorted(source[moved]) == moved
    )  # a permutation among the chosen pairs
    assert all(noisy[i] == caps[source[i]] for i in range(40))
    assert noisy_captions(caps, 0.5, 3)[0] == noisy  # deterministic per seed
    with pytest.raises(ValueError, match="share"):
        noisy_captions(caps, 1.5, 0)


def test_scaling_findings():
    df = pd.DataFrame({"pairs": [50, 100, 200, 200], "caption noise": [0, 0, 0, 0.5],
                       "overall accuracy": [0.50, 0.60, 0.58, 0.52]})  # fmt: skip
    f = scaling_findings(df, 0.55)
    assert f["scale_fewest_pairs"] == 50 and f["scale_most_pairs"] == 200
    assert f["scale_gain"] == pytest.approx(8.0)
    assert (
        f["scale_shape"]
        == "did not rise with every increase in pairs: it rose at 1, fell at 1 of the 2"
    )
    assert f["scale_noisy_vs_clean"] == "6.0 points below"
    assert f["scale_vs_blind"].startswith(
        "2 of the 4 data-scaling runs beat the strongest blind baseline (55.0%), so the curve"
    )
    rising = df.assign(**{"overall accuracy": [0.5, 0.6, 0.7, 0.75]})
    assert scaling_findings(rising, 0.9)["scale_shape"] == "rose with every increase in pairs"
    assert scaling_findings(rising, 0.9)["scale_noisy_vs_clean"] == "5.0 points above"
    assert scaling_findings(rising, 0.9)["scale_vs_blind"].startswith("No data-scaling run beat")
    flat = df.assign(**{"overall accuracy": [0.5, 0.5, 0.6, 0.6]})
    assert scaling_findings(flat, 0.4)["scale_shape"].endswith(
        "rose at 1, stayed level at 1 of the 2"
    )
    assert scaling_findings(flat, 0.4)["scale_noisy_vs_clean"] == "as high as"
    with pytest.raises(ValueError, match="noisy"):
        scaling_findings(df[df["caption noise"] == 0], 0.5)


def test_too_many_pairs_are_refused_before_any_training():
    with pytest.raises(
        ValueError,
        match=r"scaling_pairs \[100, 400\] exceed the 50 caption pairs generated \(n_caption_images\)",
    ):
        check_scaling_pairs((8, 400, 100, 400), 50)
    check_scaling_pairs((8, 50), 50)  # the limit itself is allowed
    size = get_size("ci", scaling_pairs=(8, 100))
    few = SimpleNamespace(caption_scans=[None] * 10, captions=[""] * 10)
    with pytest.raises(ValueError, match=r"\[100\] exceed the 10 caption pairs"):
        data_scaling(None, few, size, 0, progress=False)  # no pre-training to use: refused first


def test_scaling_baselines_train_at_the_scaling_runs_budget(monkeypatch):
    size = get_size("ci", n_caption_images=8, n_train_images=8, n_validation_images=4, n_test_images=4,
                    scaling_pairs=(4, 8), scaling_vqa_steps=7)  # fmt: skip
    data = vp.make_medical_data(size, 0)
    trained = []

    def fake_run_config(pre, data, size, run, split="validation", budgets=()):
        trained.append((run.fusion, run.lm, run.vqa_steps, split, run.seed))
        return SimpleNamespace(metrics={"overall_accuracy": 0.5})

    monkeypatch.setattr(vp, "run_config", fake_run_config)
    out = scaling_baselines(None, data, size, 0, progress=False)
    # at scaling_vqa_steps (not final_vqa_steps), with the scaling runs' fine-tuning seed
    assert trained == [(BLIND, "medical", 7, "validation", derive_seed(0, "scaling run"))]
    assert set(out) == {"majority answer per question", "medical LM, question only (no image)"}
