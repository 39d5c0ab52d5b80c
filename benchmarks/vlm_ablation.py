"""Chapter 2 benchmark: the book-size experiment (final model and its blind baselines on an unseen test
seed, zero-shot general VLM, the full ablation on the validation split beside its blind baselines) with
throughput per fusion; writes a CSV, a Markdown table and a figure.

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


def _row(r: dict) -> str:
    """One model's table row: closed accuracy and open exact match with their 95 % intervals."""
    ci = r["interval_95"]

    def cell(k):
        return f"{r[k]:.1%} [{ci[k][0]:.1%}, {ci[k][1]:.1%}]"

    return (f"| {r['name']} | {cell('closed_accuracy')} | {cell('open_exact_match')} | "
            f"{cell('open_token_recall')} | {r['n_questions']} |")  # fmt: skip


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
    f, q, maj, z = m["final"], m["question_only"], m["majority_answer"], m["zero_shot"]
    thr = abl.groupby("fusion")["samples/s"].agg(["mean", "std", "count"]).round(1)
    lines = [
        f"# Chapter 2 benchmark ({args.size} size, seed {args.seed}, test seed {m['test_seed']})",
        "",
        f"Wall time of the whole experiment: {wall:.0f} s on {m['machine']} (one run).",
        "",
        "## Test split",
        "",
        "| model | closed accuracy | open exact match | open token recall | questions |",
        "| --- | --- | --- | --- | --- |",
        *[_row(r) for r in (f, q, maj, z)],
        "",
        "## Ablation on the validation split (mean and sd over seeds)",
        "",
        _md(summary),
        "",
        "Blind baselines on the validation split:",
        "",
        "| model | closed accuracy | open exact match | open token recall | questions |",
        "| --- | --- | --- | --- | --- |",
        *[_row({"name": k, **v}) for k, v in m["ablation_blind_baselines"].items()],
        "",
        "## Training throughput, stage 2 (samples/s on cached image tokens)",
        "",
        _md(thr.reset_index()),
        "",
    ]
    (OUT / "vlm_ablation.md").write_text("\n".join(lines))
    fig = plot_ablation(summary, m["ablation_blind_baselines"], "overall accuracy")
    fig.savefig(OUT / "vlm_ablation.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
