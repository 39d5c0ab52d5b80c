"""Benchmark chapter 3: Spark's naive/grid/quad/ends joins vs DuckDB vs the exact oracle.

For each size N (trips at February-2016 daily density: N / 392,484 days, at least one) it writes
the calibrated synthetic trips to Parquet, caches them in Spark (warm session, same data for
every engine), and measures per method: wall time of ``return_trips(...).count()`` (an action,
including the small latitude scan), the pairs found, the candidate pairs handed to the exact
test, and the shuffle bytes written. A method stops at larger N once its predicted time passes
``--limit-s``. Writes ``return_trips.csv``, ``return_trips.md`` and ``return_trips.png``.

    .venv/bin/python benchmarks/return_trips.py                      # the committed run
    .venv/bin/python benchmarks/return_trips.py --sizes 10000,100000 --radius 150
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fieldnotes.timings import cpu_model
from fieldnotes.trips import (
    FEB2016_TRIPS,
    candidate_pairs,
    normalize_trips,
    return_trips,
    return_trips_duckdb,
    return_trips_exact,
    spark_session,
    synthetic_trips,
)
from fieldnotes.trips.measure import median_seconds, timed_count

DAILY = FEB2016_TRIPS / 29
GROWTH = {"naive": 2.0, "grid": 1.5, "quad": 1.3, "ends": 1.2, "duckdb": 1.2, "oracle": 1.2}


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "load_average_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def run(sizes, r, methods, seed, limit_s, naive_limit_s, repeats_upto, out: Path, workdir: Path):
    """Measure every engine at every size; return the results table."""
    spark = spark_session()
    rows, stopped, last = [], set(), {}
    for n in sizes:
        days = max(1, round(n / DAILY))
        pdf = normalize_trips(synthetic_trips(n, seed=seed, days=days))
        path = workdir / f"trips_{n}.parquet"
        pdf.to_parquet(path, row_group_size=100_000)
        sdf = spark.read.parquet(str(path)).cache()
        sdf.count()
        repeats = 3 if n <= repeats_upto else 1
        print(f"N={n:,} days={days} repeats={repeats}", flush=True)

        def predicted(name, n=n):
            if name not in last:
                return 0.0
            n0, t0 = last[name]
            return t0 * (n / n0) ** GROWTH[name]

        engines = [*methods, "duckdb", "oracle"]
        for name in engines:
            limit = naive_limit_s if name == "naive" else limit_s
            if name in stopped or predicted(name) > limit:
                stopped.add(name)
                continue
            if name == "duckdb":
                secs, res = median_seconds(lambda pdf=pdf: return_trips_duckdb(pdf, r), repeats)
                rec = {"pairs": len(res), "candidates": np.nan, "shuffle_bytes": np.nan}
            elif name == "oracle":
                secs, res = median_seconds(lambda pdf=pdf: return_trips_exact(pdf, r), repeats)
                rec = {"pairs": len(res), "candidates": np.nan, "shuffle_bytes": np.nan}
            else:

                def once(name=name, sdf=sdf):
                    return timed_count(return_trips(sdf, r, method=name))

                secs, res = median_seconds(once, repeats)
                if name == "naive":
                    cand = n * n
                elif n <= 3_000_000:
                    cand = candidate_pairs(sdf, r, method=name)
                else:
                    cand = np.nan  # counting them costs another full join
                rec = {"pairs": res.rows, "candidates": cand, "shuffle_bytes": res.shuffle_bytes}
            last[name] = (n, secs)
            rows.append(
                {"N": n, "days": days, "engine": name, "seconds": secs, "runs": repeats, **rec}
            )
            print(
                f"  {name:7s} {secs:9.2f} s  pairs={rec['pairs']:,}  cand={rec['candidates']}",
                flush=True,
            )
            pd.DataFrame(rows).to_csv(out / "return_trips.csv", index=False)
        sdf.unpersist()
        path.unlink()
    return pd.DataFrame(rows)


def write_outputs(df: pd.DataFrame, r: float, info: dict, out: Path) -> None:
    """Table (CSV, Markdown), machine notes (JSON) and the log-log figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df.to_csv(out / "return_trips.csv", index=False)
    (out / "return_trips_machine.json").write_text(json.dumps({**info, "radius_m": r}, indent=2))
    wide = df.pivot(index="N", columns="engine", values="seconds")
    md = [
        f"Return trips at r = {r:g} m; wall seconds (median of `runs`), {info['cores']} cores "
        f"({info['cpu']}), load average {info['load_average_at_start']:.1f} at start "
        "(a load above the 2 cores means other jobs shared them).",
        "",
        df.to_markdown(index=False),
        "",
        wide.to_markdown(),
    ]
    (out / "return_trips.md").write_text("\n".join(md) + "\n")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in wide.columns:
        s = wide[name].dropna()
        ax.loglog(s.index, s.values, "o-", label=name)
    ax.set_xlabel("trips N")
    ax.set_ylabel("wall time including an action (s)")
    ax.set_title(f"Return trips, r = {r:g} m, {info['cores']} CPU cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "return_trips.png", dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,30000,100000,300000,1000000,3000000,10000000")
    p.add_argument("--radius", type=float, default=90.0, help="matching radius r in metres")
    p.add_argument("--methods", default="naive,grid,quad,ends")
    p.add_argument("--seed", type=int, default=2016)
    p.add_argument(
        "--limit-s",
        type=float,
        default=600.0,
        help="skip a method at a size whose predicted time exceeds this (s)",
    )
    p.add_argument(
        "--naive-limit-s", type=float, default=120.0, help="the same limit for the cross join (s)"
    )
    p.add_argument(
        "--repeats-upto", type=int, default=300_000, help="3 runs per point up to this N, 1 above"
    )
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="return_trips_"))
    try:
        sizes = [int(s) for s in a.sizes.split(",")]
        df = run(
            sizes,
            a.radius,
            a.methods.split(","),
            a.seed,
            a.limit_s,
            a.naive_limit_s,
            a.repeats_upto,
            out,
            workdir,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_outputs(df, a.radius, info, out)
    print((out / "return_trips.md").read_text())


if __name__ == "__main__":
    main()
