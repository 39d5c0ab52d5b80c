"""The chapter's pictures: model states per GPU by ZeRO stage, what each rank of the measured run
holds, the live bytes of its traced step per engine, and activation memory against sequence length.
Each function draws one figure and returns it."""

from __future__ import annotations

import numpy as np

from fieldnotes.memory.activations import activation_bytes
from fieldnotes.memory.zero import GB

PART_COLOURS = {"parameters": "C0", "gradients": "C1", "master": "C2", "moments": "C3"}


def plot_zero_stages(table, gpu_gb: float, *, params: int, model: str = "model"):
    """Bars of model states per GPU (GB, log scale) for each ZeRO stage and GPU count in ``table``
    (a :func:`fieldnotes.memory.zero_table`), with the GPU's ``gpu_gb`` as a dashed line."""
    import matplotlib.pyplot as plt

    gpus = list(dict.fromkeys(table["gpus"]))
    stages = sorted(set(table["stage"]))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    x = np.arange(len(gpus))
    width = 0.8 / len(stages)
    for i, stage in enumerate(stages):
        rows = table[table["stage"] == stage].set_index("gpus").loc[gpus]
        label = f"ZeRO-{stage}" if stage else "DDP (stage 0)"
        ax.bar(x + (i - (len(stages) - 1) / 2) * width, rows["total_GB"], width=width, label=label)
    ax.axhline(gpu_gb, color="black", linestyle="--", linewidth=1, label=f"GPU, {gpu_gb:.1f} GB")
    ax.set_xticks(x, [str(n) for n in gpus])
    ax.set_yscale("log")
    ax.set_xlabel("data-parallel GPUs $N_d$")
    ax.set_ylabel("model states per GPU (GB, log scale)")
    ax.set_title(f"{model}, mixed-precision Adam ($\\Psi$ = {params / 1e9:.2f} B)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_rank_states(measured, rank: int = 0):
    """Stacked bars of the model-state bytes (MB) one ``rank`` held under each engine, by part, with
    the formula's total as a black tick (``measured`` is :func:`fieldnotes.memory.measure_zero`'s
    ``states``)."""
    import matplotlib.pyplot as plt

    mine = measured[measured["rank"] == rank]
    if mine.empty:
        raise ValueError(
            f"rank {rank!r} is not in the measured table (ranks {sorted(set(measured['rank']))})"
        )
    names = list(dict.fromkeys(mine["engine"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = np.zeros(len(names))
    for part, colour in PART_COLOURS.items():
        vals = (
            np.array(
                [mine[(mine.engine == e) & (mine.part == part)].measured_bytes.sum() for e in names]
            )
            / 1e6
        )
        ax.bar(names, vals, bottom=bottom, color=colour, label=f"{part} (measured)")
        bottom += vals
    formula = [mine[mine.engine == e].formula_bytes.sum() / 1e6 for e in names]
    ax.scatter(names, formula, color="black", marker="_", s=600, zorder=3, label="formula total")
    params = int(mine["params"].iloc[0])
    ranks = measured["rank"].nunique()
    ax.set_ylabel(f"model states on rank {rank} (MB)")
    ax.set_xlabel("engine (ZeRO stage)")
    ax.set_title(f"{params / 1e6:.1f} M-parameter model on {ranks} CPU ranks")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    return fig


def plot_timelines(timeline, rank: int = 0):
    """One panel per engine: live bytes (MB) of ``rank``'s traced step over time (ms), stacked by
    category, with the phases' starts as dotted lines and the peak marked (``timeline`` is
    :func:`fieldnotes.memory.measure_zero`'s ``timeline``)."""
    import matplotlib.pyplot as plt

    from fieldnotes.memory.timeline import CATEGORIES

    mine = timeline[timeline["rank"] == rank]
    if mine.empty:
        raise ValueError(
            f"rank {rank!r} is not in the timeline (ranks {sorted(set(timeline['rank']))})"
        )
    names = list(dict.fromkeys(mine["engine"]))
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        g = mine[mine["engine"] == name]
        ms = g["seconds"].to_numpy() * 1e3
        ax.stackplot(
            ms, *(g[c].to_numpy() / 1e6 for c in CATEGORIES), labels=CATEGORIES, step="post"
        )
        changes = g["phase"].ne(g["phase"].shift()) & g["phase"].ne("before")
        for t in ms[changes.to_numpy()]:
            ax.axvline(t, color="black", linestyle=":", linewidth=0.8)
        peak = g.loc[g["total"].idxmax()]
        ax.plot(peak["seconds"] * 1e3, peak["total"] / 1e6, "kv", label="peak")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time in the traced step (ms)")
        ax.set_ylabel("live tensor bytes (MB)")
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_activations(
    seq_lens,
    *,
    hidden: int,
    heads: int,
    layers: int,
    states_gb: float,
    gpu_gb: float,
    states_label: str = "model states, ZeRO-3",
    measured=None,
):
    """Activation memory (GB per GPU, micro-batch 1) of ``layers`` transformer layers against
    sequence length, for each recomputation mode (Korthikanti et al.), with ZeRO-3's
    ``states_gb`` and the GPU's ``gpu_gb`` as horizontal lines (log-log axes). ``measured`` is
    an optional (label, bytes of all layers at sequence length s) pair drawn as one more line."""
    import matplotlib.pyplot as plt

    seqs = [int(s) for s in seq_lens]
    fig, ax = plt.subplots(figsize=(7, 4))
    for mode in ["none", "selective", "full"]:
        gb = [activation_bytes(s, 1, hidden, heads, layers, mode) / GB for s in seqs]
        ax.plot(seqs, gb, marker="o", label=f"Korthikanti et al., recompute={mode}")
    if measured is not None:
        label, bytes_at = measured
        ax.plot(seqs, [bytes_at(s) / GB for s in seqs], marker="s", color="black", label=label)
    ax.axhline(states_gb, color="black", linestyle=":", label=states_label)
    ax.axhline(gpu_gb, color="black", linestyle="--", linewidth=1, label=f"GPU, {gpu_gb:.1f} GB")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("GB per GPU (micro-batch 1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_precision(table):
    """Loss against step for each precision mode (left) and the dynamic loss scale of the scaled
    fp16 run on a log axis (right), with its skipped steps marked (``table`` is
    :func:`fieldnotes.memory.precision.precision_experiment`'s)."""
    import matplotlib.pyplot as plt

    if table.empty:
        raise ValueError("table is empty: no precision run to plot")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for mode, g in table.groupby("mode", sort=False):
        left.plot(g["step"], g["loss"], label=mode, linestyle="--" if mode == "fp32" else "-")
    left.set_xlabel("optimizer step")
    left.set_ylabel("training loss (nats per token)")
    left.legend(fontsize=8)
    scaled = table[table["mode"] == "fp16-scaled"]
    if not scaled.empty:
        right.plot(scaled["step"], scaled["scale"], color="C3", label="loss scale")
        skipped = scaled[scaled["skipped"]]
        right.plot(skipped["step"], skipped["scale"], "kx", label="skipped step")
        right.set_yscale("log", base=2)
        right.legend(fontsize=8)
    right.set_xlabel("optimizer step")
    right.set_ylabel("fp16 loss scale (log2 axis)")
    fig.tight_layout()
    return fig
