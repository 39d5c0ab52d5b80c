"""The image-dependence control: does a trained VLM's answer change when it is shown another scan?

Each trained cell of the ablation is scored once more on the same validation questions with the
image tokens of every scan replaced by those of another scan (a random permutation of the scans
with no scan left in place; one decoding pass, no training). A model that uses the image loses
accuracy; a model that answers from the question alone loses nothing. The drop is measured in
percentage points of exact-match accuracy, per cell, at the budget the cell's run ended.
"""

from __future__ import annotations

import numpy as np

from fieldnotes.vlm.seeds import derive_seed


def shuffled_features(features, seed: int):
    """``features`` (one row of image tokens per scan, first dimension = scans) with the scans
    permuted so that no scan keeps its own tokens (a random derangement from ``seed``). Raises
    ``ValueError`` when there are fewer than two scans to exchange."""
    import torch

    n = int(features.shape[0])
    if n < 2:
        raise ValueError(f"features must hold at least 2 scans to shuffle, got {n}")
    rng = np.random.default_rng(derive_seed(seed, "shuffled images"))
    order = rng.permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, 1)  # a single cycle through a random order: no fixed point
    return features[torch.as_tensor(perm)]


def image_dependence(correct: dict, shuffled: dict) -> object:
    """One row per trained cell (encoder, LM, fusion, seed, steps): its validation accuracy
    (fraction) with its own scans, with shuffled scans, and the drop (points). ``correct`` is
    ``pipeline.Ablation.correct``; ``shuffled`` maps (encoder, LM, fusion, seed) to the 1/0
    records of the shuffled pass, taken at the last budget of the cell's run."""
    import pandas as pd

    if not shuffled:
        raise ValueError("shuffled is empty; expected pipeline.Ablation.shuffled")
    rows = []
    for (e, m, f, s), wrong in sorted(shuffled.items()):
        steps = max(k[4] for k in correct if k[:4] == (e, m, f, s))
        own = correct[(e, m, f, s, steps)]
        if len(own) != len(wrong):
            raise ValueError(
                f"cell {(e, m, f, s)}: {len(wrong)} shuffled records for {len(own)} questions"
            )
        rows.append({"encoder": e, "language model": m, "fusion": f, "seed": s, "steps": steps,
                     "own scans": float(own.mean()), "shuffled scans": float(wrong.mean()),
                     "drop (points)": float(own.mean() - wrong.mean()) * 100})  # fmt: skip
    return pd.DataFrame(rows)


def dependence_findings(table) -> dict[str, object]:
    """Glue values from ``image_dependence``: the smallest, largest and mean drop (points), the
    number of cells whose accuracy did not fall at all, and a sentence saying whether the cells use
    the image."""
    if len(table) == 0:
        raise ValueError("table is empty; expected image_dependence's rows")
    drops = table["drop (points)"].to_numpy()
    unmoved = int((np.abs(drops) < 1e-9).sum())
    n = len(drops)
    if unmoved == n:
        use = (f"none of the {n} cells lost anything: their answers do not depend on the scan, so at "
               "this size the models answer from the question alone")  # fmt: skip
    elif drops.max() <= 0:
        use = f"no cell got worse (the largest drop is {drops.max():+.1f} points), so none relies on its own scan"
    else:
        use = (f"{int((drops > 0).sum())} of the {n} cells got worse, so at least those use the scan "
               f"they are shown")  # fmt: skip
    return {"shuffle_min": float(drops.min()), "shuffle_max": float(drops.max()),
            "shuffle_mean": float(drops.mean()), "shuffle_unmoved": unmoved, "shuffle_cells": n,
            "shuffle_use": use}  # fmt: skip
