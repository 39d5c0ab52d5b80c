"""Chapter 5's figures: one idea each, labelled axes with units (matplotlib, imported lazily)."""

from __future__ import annotations

from fieldnotes.shop.utterances import CHANNELS

CHANNEL_LABELS = {"accented": "accented", "no_diacritics": "no diacritics", "typos": "typos", "english": "English"}


def plot_by_channel(series: dict[str, dict[str, float]], *, ylabel: str, title: str, target: float | None = None):
    """Grouped bars: one group per noise channel, one bar per series ({name: {channel: value}}),
    each bar labelled with its value, the legend outside the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    x = np.arange(len(CHANNELS))
    width = 0.8 / len(series)
    for n, (name, values) in enumerate(series.items()):
        bars = ax.bar(x + (n - (len(series) - 1) / 2) * width, [values[c] for c in CHANNELS], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, rotation=90, padding=2)  # the value of each bar, readable
    if target is not None:
        ax.axhline(target, color="black", lw=1, ls="--", label=f"target {target:g}")
    ax.set_xticks(x, [CHANNEL_LABELS[c] for c in CHANNELS])
    ax.set_xlabel("how the shopper typed (noise channel)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.2)  # room for the bar labels
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # outside: it covers no bar
    fig.tight_layout()
    return ax


def plot_latency_vs_rate(rows: list[dict], knee_rate: float | None, *, target_ms: float):
    """Median p50 and p99 turn latency over each rate's repeats (ms, from the scheduled send time)
    against offered turns per second, the p99's min-max over the repeats as error bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    offered = [r["offered_turns_per_s"] for r in rows]
    ax.plot(offered, [r["latency_ms"]["p50"] for r in rows], "o-", label="p50 turn latency (median of runs)")
    p99 = [r["latency_ms"]["p99"] for r in rows]
    spread = [[m - r["p99_range_ms"][0] for m, r in zip(p99, rows, strict=True)],
              [r["p99_range_ms"][1] - m for m, r in zip(p99, rows, strict=True)]]
    ax.errorbar(offered, p99, yerr=spread, fmt="s-", capsize=3, label="p99 turn latency (median, min-max of runs)")
    ax.axhline(target_ms, color="black", lw=1, ls="--", label=f"p99 target {target_ms:g} ms")
    if knee_rate is not None:
        k = next(r for r in rows if r["rate"] == knee_rate)
        ax.axvline(k["offered_turns_per_s"], color="tab:green", lw=1, label="knee (last sustained rate)")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (turns per second)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title("open-loop load: latency from the scheduled send time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return ax
