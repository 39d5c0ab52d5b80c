"""The chapter's figures: scan gallery, loss curves, precision curves, answers, the ablation."""

from __future__ import annotations

import numpy as np


def plot_gallery(scans, captions, items, dicom_image=None, per_modality: int = 3):
    """Generated scans (one row per modality) with caption and one Q&A each, plus a real DICOM slice."""
    import matplotlib.pyplot as plt

    mods = ["ct", "x-ray", "mri"]
    cols = per_modality + (1 if dicom_image is not None else 0)
    fig, axes = plt.subplots(3, cols, figsize=(3.0 * cols, 9.6))
    for r, m in enumerate(mods):
        idx = [i for i, s in enumerate(scans) if s.modality == m]
        chosen = (
            sorted(idx, key=lambda i: (not scans[i].abnormal, i))[: per_modality - 1]
            + [i for i in idx if not scans[i].abnormal][:1]
        )
        for c, i in enumerate(chosen):
            ax = axes[r, c]
            ax.imshow(scans[i].image, cmap="gray", vmin=0, vmax=1)
            qa = next((it for it in items if it.image == i and it.answer_type == "open"), None)
            text = captions[i] + (f"\nQ: {qa.question}\nA: {qa.answer}" if qa else "")
            ax.set_title(text, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        for c in range(len(chosen), per_modality):
            axes[r, c].axis("off")
        if dicom_image is not None:
            ax = axes[r, -1]
            if r == 0:
                ax.imshow(dicom_image, cmap="gray", vmin=0, vmax=1)
                ax.set_title("real CT (pydicom CT_small.dcm)\nHU rescaled, windowed", fontsize=7)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.axis("off")
    fig.suptitle("Generated scans with their captions and a question (64 x 64 pixels)")
    fig.tight_layout()
    return fig


def plot_curves(
    curves: dict[str, list[float]],
    title: str,
    smooth: int = 10,
    ylabel: str = "cross-entropy loss (nats per token)",
):
    """Training loss per step (moving average over ``smooth`` steps) for several runs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, ys in curves.items():
        y = np.asarray(ys, dtype=float)
        k = max(1, min(smooth, len(y) // 5))
        ax.plot(np.convolve(y, np.ones(k) / k, mode="valid"), label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_answers(scans, items, predictions, k: int = 8, seed: int = 0):
    """``k`` test questions, half answered right and half wrong where possible, with the scan."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    right = [i for i, (it, p) in enumerate(zip(items, predictions, strict=True)) if p == it.answer]
    wrong = [i for i, (it, p) in enumerate(zip(items, predictions, strict=True)) if p != it.answer]
    pick = list(rng.permutation(right)[: k // 2]) + list(rng.permutation(wrong)[: k - k // 2])
    fig, axes = plt.subplots(2, (k + 1) // 2, figsize=(2.6 * ((k + 1) // 2), 6.4))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), pick, strict=False):
        it = items[i]
        ax.imshow(scans[it.image].image, cmap="gray", vmin=0, vmax=1)
        ok = predictions[i] == it.answer
        ax.set_title(f"Q: {it.question}\nmodel: {predictions[i] or '(empty)'}\ntruth: {it.answer}",
                     fontsize=7, color="green" if ok else "red")  # fmt: skip
    fig.suptitle("Greedy answers of the final model (green right, red wrong)")
    fig.tight_layout()
    return fig


def plot_ablation(
    summary, baselines: dict[str, dict], metric: str = "closed accuracy", split: str = "validation"
):
    """Mean ± sd over seeds of ``metric`` per (encoder, LM) group, one bar per fusion, with one
    dashed reference line per blind baseline (name -> ``vqa_metrics`` on the same split)."""
    import matplotlib.pyplot as plt

    groups = summary[["encoder", "language model"]].drop_duplicates().values.tolist()
    fusions = list(dict.fromkeys(summary["fusion"]))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    w = 0.8 / len(fusions)
    for j, f in enumerate(fusions):
        means, sds = [], []
        for e, m in groups:
            row = summary[
                (summary["encoder"] == e)
                & (summary["language model"] == m)
                & (summary["fusion"] == f)
            ]
            means.append(float(row[f"{metric} mean"].iloc[0]) * 100 if len(row) else np.nan)
            sd = float(row[f"{metric} sd"].iloc[0]) * 100 if len(row) else np.nan
            sds.append(0.0 if np.isnan(sd) else sd)
        ax.bar(np.arange(len(groups)) + j * w - 0.4 + w / 2, means, w, yerr=sds, capsize=3, label=f)
    styles = ["--", ":", "-.", (0, (5, 1))]
    for k, (name, m) in enumerate(baselines.items()):
        ax.axhline(m[metric.replace(" ", "_")] * 100, color="0.3", ls=styles[k % len(styles)],
                   label=f"blind: {name}")  # fmt: skip
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels([f"{e} encoder\n{m} LM" for e, m in groups])
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    seeds = int(summary["seeds"].max()) if "seeds" in summary.columns else 1
    spread = (
        "mean ± sd over pre-training seeds" if seeds > 1 else "one pre-training seed, no error bars"
    )
    ax.set_title(f"Ablation: {metric} on the {split} split ({spread})")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


def plot_precision_curves(
    losses: dict[str, list[float]], skipped: dict[str, list[int]], smooth: int = 10
):
    """Stage-2 training loss per step (moving average over ``smooth`` steps) of the same run in
    several precisions (name -> loss per step, in nats per answer token), with each precision's
    skipped steps (FP16 overflow: name -> step indices) marked at their raw loss."""
    import matplotlib.pyplot as plt

    if not losses:
        raise ValueError("losses is empty: give at least one precision's curve")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, ys in losses.items():
        y = np.asarray(ys, dtype=float)
        k = max(1, min(smooth, len(y) // 5))
        (line,) = ax.plot(
            np.arange(k - 1, len(y)), np.convolve(y, np.ones(k) / k, mode="valid"), label=name
        )
        steps = [s for s in skipped.get(name, []) if 0 <= s < len(y)]
        if steps:
            ax.plot(
                steps,
                y[steps],
                "x",
                color=line.get_color(),
                label=f"{name}: {len(steps)} skipped (overflow)",
            )
    ax.set_xlabel("optimizer step (VQA tuning)")
    ax.set_ylabel("cross-entropy loss (nats per token)")
    ax.set_title("The final configuration trained in FP32, BF16 and FP16 (same seed and batches)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_budget_curves(summary, baselines: dict[str, dict], metric: str = "overall accuracy",
                       split: str = "validation"):  # fmt: skip
    """``metric`` against stage-2 steps for every ablation cell (``pipeline.summarize_ablation``
    rows at each budget: colour = encoder/LM pair, line style = fusion, error bars = sd over seeds
    where a cell has several), with one grey reference line per blind baseline (name ->
    ``vqa_metrics`` on the same split)."""
    import matplotlib.pyplot as plt

    if len(summary) == 0:
        raise ValueError("summary is empty; expected summarize_ablation's rows")
    pairs = summary[["encoder", "language model"]].drop_duplicates().values.tolist()
    fusions = list(dict.fromkeys(summary["fusion"]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    drawn: dict[tuple, str] = {}  # a curve's points -> the label of the first curve drawn with them
    for i, (e, m) in enumerate(pairs):
        for j, f in enumerate(fusions):
            rows = summary[(summary["encoder"] == e) & (summary["language model"] == m)
                           & (summary["fusion"] == f)].sort_values("steps")  # fmt: skip
            if len(rows) == 0:
                continue
            sd = rows[f"{metric} sd"].fillna(0).to_numpy() * 100
            label = f"{e} enc + {m} LM, {f}"
            points = tuple(
                zip(rows["steps"], np.round(rows[f"{metric} mean"].to_numpy(), 9), strict=True)
            )
            if points in drawn:  # say so rather than hide one curve under another
                label += f" (identical to {drawn[points]}, hidden under it)"
            drawn.setdefault(points, f"{e} enc + {m} LM, {f}")
            ax.errorbar(rows["steps"], rows[f"{metric} mean"] * 100, yerr=sd, color=colours[i % len(colours)],
                        ls=lines[j % len(lines)], marker="o", ms=4, capsize=3, label=label)  # fmt: skip
    for k, (name, mm) in enumerate(baselines.items()):
        ax.axhline(mm[metric.replace(" ", "_")] * 100, color="0.45", lw=1.2,
                   ls=(0, (1 + 2 * k, 2)), label=f"blind: {name}")  # fmt: skip
    ax.set_xlabel("stage-2 training steps (VQA tuning)")
    ax.set_ylabel(f"{metric} on the {split} split (%)")
    ax.set_title(f"Ablation cells along one run each: {metric} against budget")
    ax.legend(fontsize=6.5, ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


def plot_data_scaling(table, baselines: dict[str, dict], metric: str = "overall accuracy"):
    """``metric`` on the validation split against the number of image-caption pairs (log scale) of
    the data-scaling runs (``scaling.data_scaling``): clean captions as a line with 95 % intervals,
    noisy captions as separate points, blind baselines as grey reference lines."""
    import matplotlib.pyplot as plt

    if len(table) == 0:
        raise ValueError("table is empty; expected data_scaling's rows")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for noisy, rows in table.groupby(table["caption noise"] > 0):
        rows = rows.sort_values("pairs")
        y = rows[metric] * 100
        if metric == "overall accuracy":
            err = [y - rows["overall lo"] * 100, rows["overall hi"] * 100 - y]
        else:
            err = None
        label = (
            f"{rows['caption noise'].iloc[0]:.0%} of captions swapped"
            if noisy
            else "clean captions"
        )
        ax.errorbar(rows["pairs"], y, yerr=err, marker="s" if noisy else "o", ls="none" if noisy else "-",
                    capsize=3, label=label)  # fmt: skip
    for k, (name, mm) in enumerate(baselines.items()):
        ax.axhline(mm[metric.replace(" ", "_")] * 100, color="0.45", lw=1.2,
                   ls=(0, (1 + 2 * k, 2)), label=f"blind: {name}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("image-caption pairs for encoder pre-training and alignment (log scale)")
    ax.set_ylabel(f"{metric}, validation (%)")
    ax.set_title("Data scaling: the final configuration against its caption data")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
