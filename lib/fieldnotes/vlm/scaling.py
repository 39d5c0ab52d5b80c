"""Data scaling, the test of "data is everything": the final configuration with its medical encoder
pre-trained, and its fusion aligned, on more or fewer image-caption pairs, and on noisy captions.

For every count n in ``ExperimentSize.scaling_pairs`` the medical encoder is re-pre-trained with
the CLIP loss on the first n caption pairs (the same initial weights, ``clip_steps`` steps: the
compute is fixed, only the data changes), stage 1 aligns the Q-Former on the same n pairs, and
stage 2 tunes for ``scaling_vqa_steps`` on the full VQA training split; the model is scored on the
validation split. The noisy-caption run uses the largest n with a share ``scaling_noise`` of the
captions swapped for another scan's caption (a permutation among the chosen pairs), as scraped
figure captions often describe something else. The run on all pairs without noise reuses the
chapter's shared medical encoder, which was pre-trained exactly so.

The blind references for these runs (``scaling_baselines``) are trained for the same
``scaling_vqa_steps``, so the figure compares models of equal VQA budget.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fieldnotes.vlm.seeds import derive_seed


def noisy_captions(captions: list[str], share: float, seed: int) -> tuple[list[str], np.ndarray]:
    """``captions`` with round(``share`` · n) of them replaced by another pair's caption; returns the
    captions and, per pair, the index of the scan its caption now describes."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share!r}")
    n = len(captions)
    source = np.arange(n)
    k = int(round(share * n))
    if k >= 2:
        rng = np.random.default_rng(derive_seed(seed, "noisy captions"))
        chosen = rng.choice(n, k, replace=False)
        source[chosen] = chosen[np.roll(np.arange(k), 1)]  # a cycle: no chosen caption stays put
    return [captions[i] for i in source], source


def check_scaling_pairs(pairs, n_caption_images: int) -> None:
    """Raise ``ValueError`` naming the counts in ``pairs`` (``scaling_pairs``) above
    ``n_caption_images``, the caption pairs there are to scale over; ``ExperimentSize`` can call it
    before any pre-training."""
    too_many = sorted(n for n in set(pairs) if n > n_caption_images)
    if too_many:
        raise ValueError(f"scaling_pairs {too_many} exceed the {n_caption_images} caption pairs generated "
                         "(n_caption_images): a data-scaling run cannot use more pairs than that")  # fmt: skip


def scaling_settings(size) -> list[tuple[int, float]]:
    """(pairs, noise share) of every data-scaling run: each count clean, the largest also noisy."""
    pairs = sorted(set(size.scaling_pairs))
    return [(n, 0.0) for n in pairs] + [(pairs[-1], float(size.scaling_noise))]


def data_scaling(pre, data, size, seed: int, progress: bool = True):
    """One row per ``scaling_settings`` run: pairs, caption noise share and the validation scores
    (fractions) of the final configuration trained on that data (see the module docstring)."""
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    from fieldnotes.vlm.data import images_array
    from fieldnotes.vlm.pipeline import VLMRunConfig, run_config
    from fieldnotes.vlm.text import canonical_caption
    from fieldnotes.vlm.vision import VisionEncoder, encode_images, pretrain_clip

    check_scaling_pairs(size.scaling_pairs, len(data.caption_scans))
    rows = []
    for n, noise in tqdm(scaling_settings(size), desc="data scaling", disable=not progress):
        scans = data.caption_scans[:n]
        captions, source = noisy_captions(data.captions[:n], noise, seed)
        if n == len(data.caption_scans) and noise == 0:
            view = pre
        else:
            torch.manual_seed(derive_seed(seed, "medical encoder init"))
            enc = VisionEncoder(size.vision)
            imgs = images_array(scans)
            keys = [canonical_caption(scans[i]) for i in source]
            pretrain_clip(enc, imgs, captions, keys, pre.tokenizer, size.clip_steps, 64, size.lr,
                          derive_seed(seed, "medical encoder"), progress=False)  # fmt: skip
            enc.requires_grad_(False)
            feats = dict(pre.features)
            feats[("medical", "caption")] = encode_images(enc, imgs)
            for split, split_scans in (
                ("train", data.train_scans),
                ("validation", data.validation_scans),
            ):
                feats[("medical", split)] = encode_images(enc, images_array(split_scans))
            view = replace(pre, encoders={**pre.encoders, "medical": enc}, features=feats)
        run = VLMRunConfig(seed=derive_seed(seed, "scaling run"), vqa_steps=size.scaling_vqa_steps,
                           progress=False)  # fmt: skip
        r = run_config(view, replace(data, caption_scans=scans, captions=captions), size, run)
        m = r.metrics
        rows.append({"pairs": n, "caption noise": noise, "overall accuracy": m["overall_accuracy"],
                     "closed accuracy": m["closed_accuracy"], "open exact match": m["open_exact_match"],
                     "overall lo": m["interval_95"]["overall_accuracy"][0],
                     "overall hi": m["interval_95"]["overall_accuracy"][1]})  # fmt: skip
    return pd.DataFrame(rows)


def scaling_baselines(pre, data, size, seed: int, progress: bool = True) -> dict[str, dict]:
    """Name -> validation ``vqa_metrics`` of the data-scaling runs' blind references: the majority
    answer per question (from the training split) and the medical LM trained on the questions alone
    (zero image tokens) for ``size.scaling_vqa_steps``, the scaling runs' VQA budget, with their
    fine-tuning seed and batches."""
    from fieldnotes.vlm.fusion import BLIND
    from fieldnotes.vlm.pipeline import VLMRunConfig, majority_baseline, run_config

    run = VLMRunConfig("medical", "medical", BLIND, derive_seed(seed, "scaling run"), size.scaling_vqa_steps,
                       progress=progress)  # fmt: skip
    return {"majority answer per question": majority_baseline(data, "validation"),
            run.name: run_config(pre, data, size, run, "validation").metrics}  # fmt: skip


def scaling_findings(df, blind_best: float) -> dict[str, object]:
    """What the data-scaling table says (keys are glue names): accuracy with the fewest and the most
    clean pairs, the gain (points), how accuracy moved at each increase in pairs, the noisy run
    against the clean one with the same pairs, and how many runs beat ``blind_best`` (the strongest
    blind baseline's overall accuracy on the same split at the same VQA budget, ``scaling_baselines``,
    a fraction)."""
    need = {"pairs", "caption noise", "overall accuracy"}
    if not need <= set(df.columns) or len(df) == 0:
        raise ValueError(f"df must be data_scaling's table with columns {sorted(need)}")
    clean = df[df["caption noise"] == 0].sort_values("pairs")
    noisy = df[df["caption noise"] > 0]
    if len(clean) < 2 or len(noisy) == 0:
        raise ValueError("df needs at least two clean counts and one noisy run")
    acc = clean["overall accuracy"].to_numpy()
    steps = np.round(np.diff(acc), 12)
    up, down, level = int((steps > 0).sum()), int((steps < 0).sum()), int((steps == 0).sum())
    if up == len(steps):
        shape = "rose with every increase in pairs"
    else:
        parts = [f"rose at {up}" if up else "", f"fell at {down}" if down else "",
                 f"stayed level at {level}" if level else ""]  # fmt: skip
        shape = f"did not rise with every increase in pairs: it {', '.join(p for p in parts if p)} of the {len(steps)}"
    nz = noisy.iloc[0]
    ref = float(clean[clean["pairs"] == nz["pairs"]]["overall accuracy"].iloc[0])
    gap = (float(nz["overall accuracy"]) - ref) * 100
    noisy_phrase = (f"{abs(gap):.1f} points {'below' if gap < 0 else 'above'}" if round(gap, 1) != 0
                    else "as high as")  # fmt: skip
    above = int((df["overall accuracy"] > blind_best).sum())
    if above == 0:
        vs_blind = (f"No data-scaling run beat the strongest blind baseline ({blind_best:.1%}): at this size "
                    "these models did not learn from the images, so the runs say nothing about data yet.")  # fmt: skip
    else:
        vs_blind = (f"{above} of the {len(df)} data-scaling runs beat the strongest blind baseline "
                    f"({blind_best:.1%}), so the curve is the measured size of data in this small world: "
                    "what the same compute buys with more, and with cleaner, pairs.")  # fmt: skip
    return {
        "scale_fewest_pairs": int(clean["pairs"].iloc[0]),
        "scale_most_pairs": int(clean["pairs"].iloc[-1]),
        "scale_fewest_acc": float(acc[0]),
        "scale_most_acc": float(acc[-1]),
        "scale_gain": float(acc[-1] - acc[0]) * 100,
        "scale_shape": shape,
        "scale_noise_share": float(nz["caption noise"]),
        "scale_noisy_acc": float(nz["overall accuracy"]),
        "scale_noisy_vs_clean": noisy_phrase,
        "scale_vs_blind": vs_blind,
    }
