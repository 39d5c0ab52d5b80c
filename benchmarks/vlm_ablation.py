"""Chapter 2 benchmark: the book-size experiment (final model on an unseen test seed, zero-shot general VLM,
the full ablation) with throughput per fusion; writes a CSV, a Markdown table and a figure.

Usage: python benchmarks/vlm_ablation.py [--size book] [--seed 0] [--test-seed 1000] [--threads 1]
Outputs: benchmarks/results/vlm_ablation.csv, vlm_ablation.md, vlm_ablation.png, vlm_metrics.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from fieldnotes.vlm.figures import plot_ablation  # noqa: E402
from fieldnotes.vlm.pipeline import get_size, run_chapter, set_threads  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"


def _md(df: pd.DataFrame) -> str:
    """A Markdown table without extra dependencies."""
    cols = [str(c) for c in df.columns]
    rows = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for r in df.itertuples(index=False):
        rows.append(
            "| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="book")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    set_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    m = run_chapter(get_size(args.size), args.seed, args.test_seed, progress=False)
    wall = time.perf_counter() - t0
    m["wall_seconds"] = wall
    m["machine"] = f"{platform.processor() or platform.machine()}, {args.threads} torch thread(s)"
    (OUT / "vlm_metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    abl = pd.DataFrame(m["ablation"])
    summary = pd.DataFrame(m["ablation_summary"])
    abl.to_csv(OUT / "vlm_ablation.csv", index=False)
    f, z = m["final"], m["zero_shot"]
    thr = abl.groupby("fusion")["samples/s"].agg(["mean", "std", "count"]).round(1)
    lines = [
        f"# Chapter 2 benchmark ({args.size} size, seed {args.seed}, test seed {m['test_seed']})",
        "",
        f"Wall time of the whole experiment: {wall:.0f} s on {m['machine']} (one run).",
        "",
        "| model | closed accuracy | open exact match | questions |",
        "| --- | --- | --- | --- |",
        f"| final (medical encoder + medical LM + Q-Former) | {f['closed_accuracy']:.1%} | "
        f"{f['open_exact_match']:.1%} | {f['n_questions']} |",
        f"| general VLM, zero-shot | {z['closed_accuracy']:.1%} | {z['open_exact_match']:.1%} | {z['n_questions']} |",
        "",
        "## Ablation (mean and sd over seeds)",
        "",
        _md(summary),
        "",
        "## Training throughput, stage 2 (samples/s on cached image tokens)",
        "",
        _md(thr.reset_index()),
        "",
    ]
    (OUT / "vlm_ablation.md").write_text("\n".join(lines))
    fig = plot_ablation(summary, z, "overall accuracy")
    fig.savefig(OUT / "vlm_ablation.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
