"""Data scaling: noisy captions are a true permutation of the chosen share, the findings say what the
table says."""

import pandas as pd
import pytest

from fieldnotes.vlm.scaling import noisy_captions, scaling_findings


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
