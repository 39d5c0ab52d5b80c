"""Command line: ``python -m fieldnotes.vlm --size ci|book --seed S --out DIR [--test-seed T] [--only final]``.

Runs pre-training, alignment, VQA tuning and evaluation of the final configuration on the test
split (in ``--precision``, recorded under ``precision``), its blind baselines (``question_only``,
``majority_answer``), the zero-shot general VLM and, on the validation split, the ablation at every
budget with the larger lever per budget and the data scaling, and writes ``DIR/metrics.json``. A ``--test-seed`` that
would regenerate a training or validation split is refused with exit code 2 before any training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chapter's experiment and write ``metrics.json``; returns the exit code."""
    ap = argparse.ArgumentParser(
        prog="python -m fieldnotes.vlm", description=__doc__.splitlines()[0]
    )
    ap.add_argument(
        "--size", choices=["ci", "book"], default="ci", help="experiment size (default ci)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed for data, pre-training and training")
    ap.add_argument(
        "--test-seed",
        type=int,
        default=None,
        help="evaluate the final model on a test set from this seed",
    )
    ap.add_argument("--only", choices=["final"], default=None, help="'final' skips the ablation")
    ap.add_argument(
        "--out", type=Path, default=Path("vlm-results"), help="output folder for metrics.json"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        default="fp32",
        help="training precision of the final model (fp16 with a gradient scaler)",
    )
    ap.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = ap.parse_args(argv)

    from fieldnotes.vlm.pipeline import (
        SplitCollision,
        get_size,
        run_chapter,
        set_threads,
        split_seeds,
    )

    if args.seed < 0 or (args.test_seed is not None and args.test_seed < 0):
        ap.error("--seed and --test-seed must be non-negative")
    try:
        split_seeds(args.seed, args.test_seed)
    except SplitCollision as e:
        print(f"python -m fieldnotes.vlm: error: {e}", file=sys.stderr)
        return 2
    set_threads(args.threads)
    t0 = time.perf_counter()
    metrics = run_chapter(get_size(args.size), args.seed, args.test_seed, args.only == "final",
                          progress=not args.no_progress, precision=args.precision)  # fmt: skip
    metrics["wall_seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    f, q = metrics["final"], metrics["question_only"]
    print(f"final: closed {f['closed_accuracy']:.3f}, open {f['open_exact_match']:.3f}; question only: "
          f"closed {q['closed_accuracy']:.3f}, open {q['open_exact_match']:.3f} -> {path}", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
