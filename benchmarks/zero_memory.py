"""Chapter 1 benchmark: formula vs measured model states for DeepSpeed ZeRO 0-3, PyTorch ZeRO-1, FSDP.

Trains the chapter's small BLOOM-style model on CPU ranks (gloo) once per engine and writes

- ``benchmarks/results/zero_memory.csv``: one row per engine, rank and part (measured elements and
  bytes, formula bytes, the named remainder, peak RSS, seconds);
- ``benchmarks/results/zero_memory.md``: the per-rank summary and the machine it ran on;
- ``benchmarks/results/zero_memory.png``: measured vs formula bytes per engine (rank 0);
- ``benchmarks/results/zero_memory.timeline.csv``: the traced step's live bytes per category, per
  engine and rank, thinned to at most ``--timeline-rows`` rows each (the peak row always kept),
  with the run's shape in every row (what the chapter shows where it cannot start processes).

Usage: ``python benchmarks/zero_memory.py [--hidden 384 --layers 8 ... --world-size 2 --repeats 1]``.
Times are wall-clock per engine (start-up excluded, median over ``--repeats``); they depend on
the machine and on what else runs on it. Bytes are deterministic.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")


def main(argv=None) -> None:
    from fieldnotes.memory import RunSpec, measure_zero, summary_table
    from fieldnotes.memory.measure import ENGINES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--micro-batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps before the traced one (the last 3 timed)")
    ap.add_argument("--world-size", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    ap.add_argument(
        "--shared-processes",
        action="store_true",
        help="run all engines in one process group (faster; peak RSS not comparable)",
    )
    ap.add_argument("--repeats", type=int, default=1, help="repeat the run; times are medians")
    ap.add_argument("--timeline-rows", type=int, default=400, help="rows kept per engine and rank")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    spec = RunSpec(
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        vocab=args.vocab,
        seq_len=args.seq_len,
        micro_batch=args.micro_batch,
        steps=args.steps,
    )
    from fieldnotes.memory.scoreboard import estimator_table, peak_spread, peaks_of
    from fieldnotes.memory.thinned import thin_timeline

    measurements = []
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        measurements.append(
            measure_zero(
                spec,
                engines=args.engines,
                world_size=args.world_size,
                fresh_processes=not args.shared_processes,
            )
        )
    wall = time.perf_counter() - t0
    runs = [m.states for m in measurements]
    peaks = pd.concat([peaks_of(m, spec, run=i) for i, m in enumerate(measurements)])
    board = estimator_table(peaks, args.world_size)
    spread = peak_spread(peaks).reset_index(level="spec", drop=True)
    table = runs[0].copy()
    table["seconds"] = pd.concat([r["seconds"] for r in runs], axis=1).median(axis=1)
    for r in runs[1:]:
        assert (r.measured_bytes.values == table.measured_bytes.values).all(), "bytes changed"
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "zero_memory.csv", index=False)
    thin_timeline(measurements[0].timeline, spec, rows=args.timeline_rows).to_csv(
        args.out / "zero_memory.timeline.csv", index=False
    )

    wide = summary_table(table)
    secs = table.groupby(["engine", "rank"], sort=False)["seconds"].first()
    wide[("time", "s")] = secs
    machine = (
        f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python "
        f"{platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f}"
    )
    with open(args.out / "zero_memory.md", "w") as f:
        f.write(
            f"# Formula vs measured model states ({int(table.params.iloc[0]):,} parameters, "
            f"{args.world_size} CPU ranks)\n\n"
        )
        f.write(f"Machine: {machine}. Repeats: {args.repeats}; total wall time {wall:.0f} s.\n")
        f.write(f"Shape: {spec}.\n")
        f.write(
            "Processes: one group for all engines, one after another (--shared-processes): peak RSS "
            "includes what earlier engines left behind.\n"
            if args.shared_processes
            else "Processes: a fresh group per engine.\n"
        )
        f.write(
            "Bytes are deterministic; times are medians per engine (training + measurement, "
            "process start-up excluded) and depend on machine load.\n\n"
        )
        wide.columns = [" ".join(c) for c in wide.columns]
        f.write(wide.round(3).to_markdown() + "\n\n")
        diff = table[table.measured_bytes != table.formula_bytes]
        f.write(
            "Named remainders (measured = explained in every row: "
            f"{bool((table.measured_bytes == table.explained_bytes).all())}):\n\n"
        )
        f.write(
            diff[
                [
                    "engine",
                    "rank",
                    "part",
                    "measured_bytes",
                    "formula_bytes",
                    "measured/formula",
                    "explanation",
                ]
            ]
            .round(4)
            .to_markdown(index=False)
            + "\n"
        )

        f.write(
            "\nPeak live bytes of the traced step (largest rank, median of the repeats) beside "
            "each estimator (error = prediction / measurement - 1):\n\n"
        )
        shown = ["engine", "measured_bytes"] + [c for c in board.columns if c.endswith("_error")]
        f.write(board[shown + ["best"]].round(4).to_markdown(index=False) + "\n\n")
        f.write("Run-to-run spread of the peak (bytes):\n\n")
        f.write(spread.round(4).to_markdown() + "\n")

    rank0 = table[table["rank"] == 0]
    names = list(dict.fromkeys(rank0.engine))
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(names))
    meas = [rank0[rank0.engine == e].measured_bytes.sum() / 1e6 for e in names]
    form = [rank0[rank0.engine == e].formula_bytes.sum() / 1e6 for e in names]
    ax.bar(x - 0.2, form, width=0.4, label="formula")
    ax.bar(x + 0.2, meas, width=0.4, label="measured")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("model states on rank 0 (MB)")
    ax.set_xlabel("engine")
    ax.set_title(f"{int(table.params.iloc[0]) / 1e6:.1f} M parameters, {args.world_size} CPU ranks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "zero_memory.png", dpi=120)
    print((args.out / "zero_memory.md").read_text())


if __name__ == "__main__":
    main()
