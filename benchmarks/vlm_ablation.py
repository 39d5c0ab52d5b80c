"""Chapter 2 benchmark: the book-size experiment (final model and its blind baselines on an unseen test
seed, zero-shot general VLM, the full ablation on the validation split at every budget beside its blind
baselines, which part is the larger lever per budget, data scaling) with throughput per fusion; writes the
metrics, then renders from them alone a Markdown report, two figures and the verdict paragraph of the
README's chapter-2 section (``fieldnotes.vlm.report``). The machine's load average is recorded with the
wall time.

Usage: python benchmarks/vlm_ablation.py [--size book] [--seed 0] [--test-seed 1000] [--threads 1]
       python benchmarks/vlm_ablation.py --render   # re-render from the committed vlm_metrics.json
Outputs: benchmarks/results/vlm_metrics.json, vlm_ablation.csv, vlm_ablation.md, vlm_ablation.png
(budget curves), vlm_scaling.png (data scaling), and README.md's block between report.README_BEGIN/END
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

from fieldnotes.vlm import report  # noqa: E402
from fieldnotes.vlm.figures import plot_budget_curves, plot_data_scaling  # noqa: E402
from fieldnotes.vlm.pipeline import get_size, run_chapter, set_threads  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"


def _md(df: pd.DataFrame) -> str:
    """A Markdown table without extra dependencies; a missing value (NaN) shows as "–"."""
    cols = [str(c) for c in df.columns]
    rows = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]

    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if v != v else f"{v:.3f}"
        return str(v)

    for r in df.itertuples(index=False):
        rows.append("| " + " | ".join(cell(v) for v in r) + " |")
    return "\n".join(rows)


def _row(r: dict) -> str:
    """One model's table row: closed accuracy and open exact match with their 95 % intervals."""
    ci = r["interval_95"]

    def cell(k):
        return f"{r[k]:.1%} [{ci[k][0]:.1%}, {ci[k][1]:.1%}]"

    return (f"| {r['name']} | {cell('closed_accuracy')} | {cell('open_exact_match')} | "
            f"{cell('open_token_recall')} | {r['n_questions']} |")  # fmt: skip


def summary_lines(m: dict, size_name: str) -> list[str]:
    """The Markdown report's lines, from the metrics alone (``report.check_results`` first)."""
    report.check_results(m, "vlm_metrics.json")
    abl = pd.DataFrame(m["ablation"])
    summary = pd.DataFrame(m["ablation_summary"])
    final_steps = m["size"]["final_vqa_steps"]
    thr = (
        abl[abl["steps"] == final_steps]
        .groupby("fusion")["samples/s"]
        .agg(["mean", "std", "count"])
        .round(1)
    )
    load = m["load_average"]
    load_text = "; ".join(f"{k}: {', '.join(f'{x:.1f}' for x in v)}" for k, v in load.items())
    return [
        f"# Chapter 2 benchmark ({size_name} size, seed {m['seed']}, test seed {m['test_seed']})",
        "",
        f"Wall time of the whole experiment: {m['wall_seconds']:.0f} s on {m['machine']} (one run; load "
        f"average {load_text}; the machine was shared).",
        "",
        "## What the results say",
        "",
        report.verdict_paragraph(m),
        "",
        "## Test split",
        "",
        "| model | closed accuracy | open exact match | open token recall | questions |",
        "| --- | --- | --- | --- | --- |",
        *[_row(m[k]) for k in ("final", "question_only", "majority_answer", "zero_shot")],
        "",
        f"Final model's precision: {m['precision']}",
        "",
        "## Which part is the larger lever, per budget (effects in points, 95 % bootstrap intervals)",
        "",
        _md(pd.DataFrame(m["levers"])),
        "",
        "## Ablation on the validation split at every budget (mean and sd over pre-training seeds; "
        "sd – where a cell has one seed)",
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
        _md(pd.DataFrame(m["data_scaling"])),
        "",
        f"## Training throughput, stage 2 at the final budget ({final_steps} steps; samples/s on cached image tokens)",
        "",
        _md(thr.reset_index()),
        "",
    ]


def render(m: dict, size_name: str) -> None:
    """Write the CSV, the Markdown report, both figures and the README's verdict block from ``m``."""
    lines = summary_lines(m, size_name)
    pd.DataFrame(m["ablation"]).to_csv(OUT / "vlm_ablation.csv", index=False)
    (OUT / "vlm_ablation.md").write_text("\n".join(lines))
    summary = pd.DataFrame(m["ablation_summary"])
    fig = plot_budget_curves(summary, m["ablation_blind_baselines"], "overall accuracy")
    fig.savefig(OUT / "vlm_ablation.png", dpi=110)
    fig = plot_data_scaling(pd.DataFrame(m["data_scaling"]), m["ablation_blind_baselines"])
    fig.savefig(OUT / "vlm_scaling.png", dpi=110)
    README.write_text(report.replace_readme_block(README.read_text(), m))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="book")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--render", action="store_true",
                    help="train nothing: re-render the report, figures and README block from the committed "
                         "vlm_metrics.json")  # fmt: skip
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.render:
        m = json.loads((OUT / "vlm_metrics.json").read_text())
        report.check_results(m, str(OUT / "vlm_metrics.json"))
        render(m, args.size)
        return
    set_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    m = run_chapter(get_size(args.size), args.seed, args.test_seed, progress=False)
    m["wall_seconds"] = time.perf_counter() - t0
    m["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} torch thread(s)"
    )
    m["load_average"] = {
        "before (1, 5, 15 min)": load_before,
        "after (1, 5, 15 min)": os.getloadavg(),
    }
    (OUT / "vlm_metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    render(m, args.size)


if __name__ == "__main__":
    main()
