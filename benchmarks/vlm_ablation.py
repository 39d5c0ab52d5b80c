"""Chapter 2 benchmark: the book-size experiment (final model and its blind baselines on an unseen test
seed, zero-shot general VLM, the full ablation on the validation split at every budget beside its blind
baselines, which part is the larger lever per budget, data scaling) with throughput per fusion; writes a
CSV, a Markdown report and two figures. The machine's load average is recorded with the wall time.

Usage: python benchmarks/vlm_ablation.py [--size book] [--seed 0] [--test-seed 1000] [--threads 1]
Outputs: benchmarks/results/vlm_ablation.csv, vlm_ablation.md, vlm_ablation.png (budget curves),
vlm_scaling.png (data scaling), vlm_metrics.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402

from fieldnotes.vlm.figures import plot_budget_curves, plot_data_scaling  # noqa: E402
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
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    size = get_size(args.size)
    m = run_chapter(size, args.seed, args.test_seed, progress=False)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    m["wall_seconds"] = wall
    m["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} torch thread(s)"
    )
    m["load_average"] = {"before (1, 5, 15 min)": load_before, "after (1, 5, 15 min)": load_after}
    (OUT / "vlm_metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    abl = pd.DataFrame(m["ablation"])
    summary = pd.DataFrame(m["ablation_summary"])
    abl.to_csv(OUT / "vlm_ablation.csv", index=False)
    f, q, maj, z = m["final"], m["question_only"], m["majority_answer"], m["zero_shot"]
    final_steps = int(abl["steps"].max())
    thr = (
        abl[abl["steps"] == final_steps]
        .groupby("fusion")["samples/s"]
        .agg(["mean", "std", "count"])
        .round(1)
    )
    levers = pd.DataFrame(m.get("levers", []))
    scale = pd.DataFrame(m["data_scaling"])
    load = (
        ", ".join(f"{x:.1f}" for x in load_before)
        + " before, "
        + ", ".join(f"{x:.1f}" for x in load_after)
        + " after"
    )
    lines = [
        f"# Chapter 2 benchmark ({args.size} size, seed {args.seed}, test seed {m['test_seed']})",
        "",
        f"Wall time of the whole experiment: {wall:.0f} s on {m['machine']} (one run; load average "
        f"over 1, 5, 15 min: {load}; the machine was shared).",
        "",
        f"Final model: {size.final_vqa_steps} VQA steps. Ablation cells: one run each to "
        f"{size.budgets[-1]} steps, scored on validation after {', '.join(map(str, size.budgets))} "
        f"steps ({size.budgets[-1]} checks whether the verdict at the final budget holds longer); "
        f"{size.ablation_seeds} pre-training seed(s), fusions at every seed: {', '.join(size.seed_fusions)}.",
        "",
        "## Test split",
        "",
        "| model | closed accuracy | open exact match | open token recall | questions |",
        "| --- | --- | --- | --- | --- |",
        *[_row(r) for r in (f, q, maj, z)],
        "",
        f"Final model's precision: {m['precision']}",
        "",
        "## Which part is the larger lever, per budget (effects in points, 95 % bootstrap intervals)",
        "",
        _md(levers) if len(levers) else "The grid does not vary both the encoder and the LM.",
        "",
        "## Ablation on the validation split at every budget (mean and sd over pre-training seeds)",
        "",
        _md(summary),
        "",
        "Blind baselines on the validation split:",
        "",
        "| model | closed accuracy | open exact match | open token recall | questions |",
        "| --- | --- | --- | --- | --- |",
        *[_row({"name": k, **v}) for k, v in m["ablation_blind_baselines"].items()],
        "",
        "## Data scaling (validation, final configuration)",
        "",
        _md(scale),
        "",
        "## Training throughput, stage 2 (samples/s on cached image tokens)",
        "",
        _md(thr.reset_index()),
        "",
    ]
    (OUT / "vlm_ablation.md").write_text("\n".join(lines))
    fig = plot_budget_curves(summary, m["ablation_blind_baselines"], "overall accuracy")
    fig.savefig(OUT / "vlm_ablation.png", dpi=110)
    fig = plot_data_scaling(scale, m["ablation_blind_baselines"])
    fig.savefig(OUT / "vlm_scaling.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
