"""Benchmark chapter 3: Spark's naive/grid/quad/ends joins vs DuckDB vs the exact oracle.

For each size N (trips over ``benchmark_days(N)`` days: N / February 2016's trips a day, rounded,
at least one, so sizes below about 196 k trips are one day at less than February's density) it writes
the calibrated synthetic trips to Parquet, caches them in Spark (warm session, same data for
every engine), and measures per method: wall time of the action ``count()`` on the already
built ``return_trips`` DataFrame (session start, data generation, caching and building the plan
are outside the timer; the plan needs no scan of the data), as the median of ``--repeats`` runs
with the fastest and slowest; the pairs found; the candidate pairs handed to the exact test;
the join operator Spark chose (``join_plan``); and the shuffle bytes written (Spark's REST API).
DuckDB and the oracle are timed per call on the same generated frame (DuckDB's includes
loading it into its tables). A method stops at larger N once its predicted time passes
``--limit-s``. Writes ``NAME.csv``, ``NAME.md``, ``NAME.png`` and ``NAME_machine.json``
(``--name``, default ``return_trips``).

    .venv/bin/python benchmarks/return_trips.py                      # the committed run
    .venv/bin/python benchmarks/return_trips.py --sizes 10000,100000 --radius 150
    .venv/bin/python benchmarks/return_trips.py --sizes 10000000 --methods ends --engines duckdb --name return_trips_10m
    .venv/bin/python benchmarks/return_trips.py --levers --sizes 1000000   # return_trips_levers_1m.*
    .venv/bin/python benchmarks/return_trips.py --levers --sizes 10000000 \
        --only "trig once per row;DuckDB: trig per row, time in key"   # return_trips_levers_10m.*

``--levers`` measures the speed levers of Spark ``ends`` and of DuckDB's plan against each other
in one process on the same cached data: every round runs every variant once (the order rotated
from round to round, so a variant is not always first after a quieter or busier moment), the
load average is recorded beside each run, and the summary gives the median, fastest and slowest
of the ``--repeats`` rounds. It also writes the heaviest join keys (``key_loads``) to see skew.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fieldnotes.timings import cpu_model
from fieldnotes.trips import (
    candidate_pairs,
    normalize_trips,
    return_trips,
    return_trips_duckdb,
    return_trips_exact,
    spark_session,
    synthetic_trips,
)
from fieldnotes.trips.join import JoinOptions, key_loads, prepare_trips
from fieldnotes.trips.measure import (
    benchmark_days,
    join_plan,
    lever_summary,
    median_seconds,
    timed_count,
)

GROWTH = {"naive": 2.0, "grid": 1.5, "quad": 1.3, "ends": 1.2, "duckdb": 1.2, "oracle": 1.2}


def machine(master: str | None = None, argv: list[str] | None = None) -> dict:
    """What the numbers were measured on: the machine, the Spark master (``local[*]`` unless
    ``$SPARK_MASTER`` says otherwise: threads in one JVM, not a standalone cluster) and the
    command line that ran."""
    master = master or os.environ.get("SPARK_MASTER") or "local[*]"
    return {
        "spark_master": master,
        "spark_mode": "local (one JVM, no cluster)" if master.startswith("local") else "cluster",
        "command": " ".join(
            ["benchmarks/return_trips.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "load_average_at_start": os.getloadavg()[0],
        "python": platform.python_version(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def timed_action(df, repeats: int) -> dict:
    """Median, fastest and slowest seconds of ``repeats`` counts of the built DataFrame ``df``,
    its rows, the shuffle bytes of the last count and the join operator in its plan."""
    runs = [timed_count(df) for _ in range(repeats)]
    secs = sorted(run.seconds for run in runs)
    return {
        "seconds": float(np.median(secs)),
        "seconds_min": secs[0],
        "seconds_max": secs[-1],
        "pairs": runs[-1].rows,
        "shuffle_bytes": runs[-1].shuffle_bytes,
        "join": join_plan(df)[0],
    }


def partial_path(out: Path, name: str) -> Path:
    """Where a sweep writes its rows as it goes; ``write_outputs`` replaces ``name.csv`` with the
    complete table only at the end, so a page built during a sweep reads the last complete run."""
    return out / f"{name}.partial.csv"


def parquet_path(workdir: Path, n: int) -> Path:
    """Where :func:`trips_at` writes the ``n`` trips."""
    return workdir / f"trips_{n}.parquet"


def trips_at(spark, n: int, seed: int, workdir: Path):
    """``n`` generated trips over ``benchmark_days(n)`` days (February's daily density from about
    196 k trips up; a smaller size is one day at a lower density): (days, pandas frame, cached
    Spark frame read from a Parquet copy in ``workdir``, the way a real file would be read)."""
    days = benchmark_days(n)
    pdf = normalize_trips(synthetic_trips(n, seed=seed, days=days))
    path = parquet_path(workdir, n)
    pdf.to_parquet(path, row_group_size=100_000)
    sdf = spark.read.parquet(str(path)).cache()
    sdf.count()
    return days, pdf, sdf


def run(
    sizes, r, methods, seed, limit_s, naive_limit_s, repeats, engines, out: Path, name_out, workdir
):
    """Measure every engine at every size; return the results table."""
    spark = spark_session()
    rows, stopped, last = [], set(), {}
    for n in sizes:
        days, pdf, sdf = trips_at(spark, n, seed, workdir)
        print(f"N={n:,} days={days} repeats={repeats}", flush=True)

        def predicted(name, n=n):
            if name not in last:
                return 0.0
            n0, t0 = last[name]
            return t0 * (n / n0) ** GROWTH[name]

        for name in [*methods, *engines]:
            limit = naive_limit_s if name == "naive" else limit_s
            if name in stopped or predicted(name) > limit:
                stopped.add(name)
                continue
            if name in ("duckdb", "oracle"):
                fn = return_trips_duckdb if name == "duckdb" else return_trips_exact
                times = []
                for _ in range(repeats):
                    secs, res = median_seconds(lambda pdf=pdf, fn=fn: fn(pdf, r), 1)
                    times.append(secs)
                times.sort()
                rec = {
                    "seconds": float(np.median(times)),
                    "seconds_min": times[0],
                    "seconds_max": times[-1],
                    "pairs": len(res),
                    "candidates": np.nan,
                    "shuffle_bytes": np.nan,
                    "join": "hash join" if name == "duckdb" else "KD-tree",
                }
            else:
                rec = timed_action(return_trips(sdf, r, method=name), repeats)
                if name == "naive":
                    rec["candidates"] = n * n
                elif n <= 3_000_000:
                    rec["candidates"] = candidate_pairs(sdf, r, method=name)
                else:
                    rec["candidates"] = np.nan  # counting them costs another full join
            secs = rec["seconds"]
            last[name] = (n, secs)
            rows.append({"N": n, "days": days, "engine": name, "runs": repeats, **rec})
            print(
                f"  {name:7s} {secs:9.2f} s  pairs={rec['pairs']:,}  cand={rec['candidates']}",
                flush=True,
            )
            pd.DataFrame(rows).to_csv(partial_path(out, name_out), index=False)  # progress
        sdf.unpersist()
        parquet_path(workdir, n).unlink()  # frees the disk before the next, larger size
    return pd.DataFrame(rows)


SPARK_LEVERS = (
    # name, input ("trips" cached as read, or "prepared" cached after prepare_trips),
    # JoinOptions, runtime Spark SQL settings for the one variant
    ("first edition: trig per candidate", "trips", JoinOptions(), {}),
    ("trig once per row", "trips", JoinOptions(trig="row"), {}),
    ("prepared table cached", "prepared", JoinOptions(), {}),
    ("prepared + shuffled hash join", "prepared", JoinOptions(),
     {"spark.sql.join.preferSortMergeJoin": "false"}),
    ("prepared + AQE off", "prepared", JoinOptions(), {"spark.sql.adaptive.enabled": "false"}),
    ("prepared + 4 shuffle partitions", "prepared", JoinOptions(),
     {"spark.sql.shuffle.partitions": "4"}),
    ("prepared + 32 shuffle partitions", "prepared", JoinOptions(),
     {"spark.sql.shuffle.partitions": "32"}),
)  # fmt: skip
DUCK_LEVERS = (
    ("DuckDB: trig per candidate, time in key", {"trig": "candidate"}),
    ("DuckDB: trig per row, time in key", {}),
    ("DuckDB: trig per row, time band in join condition", {"time_in_key": False}),
)


def _spark_lever(spark, df, conf: dict) -> dict:
    """One timed count of ``df`` with the runtime settings ``conf`` set for it (then restored)."""
    old = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        run = timed_count(df)
        return {"seconds": run.seconds, "pairs": run.rows, "shuffle_bytes": run.shuffle_bytes,
                "join": join_plan(df)[0]}  # fmt: skip
    finally:
        for k, v in old.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)


def lever_names(only: str | None) -> list[str]:
    """The lever names ``--only`` picks (``;``-separated, each engine's first lever, its
    baseline, always included), or every lever when ``only`` is None."""
    every = [v[0] for v in SPARK_LEVERS] + [v[0] for v in DUCK_LEVERS]
    if only is None:
        return every
    picked = {x.strip() for x in only.split(";") if x.strip()}
    unknown = sorted(picked - set(every))
    if unknown:
        raise ValueError(f"--only names unknown lever(s) {unknown}; levers are {every}")
    picked |= {SPARK_LEVERS[0][0], DUCK_LEVERS[0][0]}
    return [x for x in every if x in picked]


def levers(n: int, r: float, seed: int, repeats: int, out: Path, name: str, workdir: Path,
           only: str | None = None, warmup: bool = True):  # fmt: skip
    """Every lever variant (or those ``only`` names, see ``lever_names``) once per round for
    ``repeats`` rounds on the same ``n`` trips, after one unrecorded warm-up run of the first
    variant unless ``warmup`` is False; writes ``name.csv`` (one row per run), ``name.md``
    (medians) and ``name_keys.csv``."""
    keep = lever_names(only)
    info = {**machine(), "radius_m": r, "N": n, "rounds": repeats, "warmup": warmup}
    spark = spark_session()
    days, pdf, sdf = trips_at(spark, n, seed, workdir)
    prepared = prepare_trips(sdf)
    prepared.df.cache().count()
    inputs = {"trips": sdf, "prepared": prepared}
    variants = [
        (lname, "Spark ends",
         lambda src=src, opt=opt, conf=conf: _spark_lever(
             spark, return_trips(inputs[src], r, method="ends", options=opt), conf))
        for lname, src, opt, conf in SPARK_LEVERS
    ] + [
        (lname, "DuckDB", lambda kw=kw: _duck_lever(pdf, r, kw)) for lname, kw in DUCK_LEVERS
    ]  # fmt: skip
    variants = [v for v in variants if v[0] in keep]
    if warmup:  # not recorded: the JVM's first join compiles its code paths
        variants[0][2]()
    rows = []
    for i in range(repeats):
        order = variants[i % len(variants) :] + variants[: i % len(variants)]
        for lname, engine, fn in order:
            load = os.getloadavg()[0]
            rec = fn()
            rows.append({"N": n, "days": days, "round": i, "lever": lname, "engine": engine,
                         "load_average": load, **rec})  # fmt: skip
            print(f"  round {i} {lname:55s} {rec['seconds']:7.2f} s load {load:.1f}", flush=True)
            pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
    keys = key_loads(prepared, r, method="ends", top=20).assign(N=n)
    keys.to_csv(out / f"{name}_keys.csv", index=False)
    summary = lever_summary(pd.DataFrame(rows))
    info["load_average_at_end"] = os.getloadavg()[0]
    (out / f"{name}_machine.json").write_text(json.dumps(info, indent=2))
    md = [
        f"Speed levers at N = {n:,}, r = {r:g} m: seconds of the action, median of {repeats} "
        f"rounds (every variant once per round, order rotated, "
        f"{'after a warm-up run' if warmup else 'no warm-up run'}), {info['cores']} cores "
        f"({info['cpu']}), load average per run in the CSV (median per lever below).",
        "",
        summary.to_markdown(index=False),
        "",
        f"Heaviest join keys of `ends` (of {int(keys['candidates'].sum()):,} candidates in the "
        "top 20; `share of candidates` is of all candidates):",
        "",
        keys.to_markdown(index=False),
    ]
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    sdf.unpersist()
    prepared.df.unpersist()
    return summary


def _duck_lever(pdf, r: float, kw: dict) -> dict:
    """One timed DuckDB run with plan options ``kw`` (loading into its tables included)."""
    secs, res = median_seconds(lambda: return_trips_duckdb(pdf, r, **kw), 1)
    return {"seconds": secs, "pairs": len(res), "shuffle_bytes": np.nan, "join": "hash join"}


def write_outputs(df: pd.DataFrame, r: float, info: dict, out: Path, name: str) -> None:
    """Table (CSV, Markdown), machine notes (JSON) and the log-log figure, as ``out/name.*``."""
    info = {**info, "load_average_at_end": os.getloadavg()[0], "radius_m": r}
    tmp = out / f"{name}.csv.tmp"
    df.to_csv(tmp, index=False)
    os.replace(tmp, out / f"{name}.csv")  # whole table at once, never a half-written one
    partial_path(out, name).unlink(missing_ok=True)
    (out / f"{name}_machine.json").write_text(json.dumps(info, indent=2))
    wide = df.pivot(index="N", columns="engine", values="seconds")
    md = [
        f"Return trips at r = {r:g} m; seconds of the action alone (median of `runs`, with the "
        f"fastest and slowest), {info['cores']} cores ({info['cpu']}), load average "
        f"{info['load_average_at_start']:.1f} at start and {info['load_average_at_end']:.1f} at "
        f"the end (a load above {info['cores']} means other jobs shared the cores).",
        "",
        df.to_markdown(index=False),
        "",
        wide.to_markdown(),
    ]
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    plot_times(df, r, int(info["cores"]), out / f"{name}.png")


def plot_times(df: pd.DataFrame, r: float, cores: int, path: Path) -> None:
    """Log-log figure of median seconds against trips N, one line per engine, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = df.pivot(index="N", columns="engine", values="seconds")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for engine in wide.columns:
        s = wide[engine].dropna()
        ax.loglog(s.index, s.values, "o-", label=engine)
    ax.set_xlabel("trips N")
    ax.set_ylabel("wall time of the action (s)")
    ax.set_title(f"Return trips, r = {r:g} m, {cores} CPU cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


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
    p.add_argument("--repeats", type=int, default=3, help="timed runs per point (median shown)")
    p.add_argument("--engines", default="duckdb,oracle", help="non-Spark engines to time")
    p.add_argument("--name", default="return_trips", help="file name stem of the outputs")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--levers", action="store_true", help="measure the speed levers (first size)")
    p.add_argument("--only", default=None, help="with --levers: ';'-separated lever names to run")
    p.add_argument("--no-warmup", action="store_true", help="with --levers: no warm-up run")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {**machine(argv=argv), "sizes": a.sizes, "methods": a.methods, "engines": a.engines,
            "repeats": a.repeats, "seed": a.seed}  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="return_trips_"))
    if a.levers:
        n = int(a.sizes.split(",")[0])
        size = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"
        name = a.name if a.name != "return_trips" else f"return_trips_levers_{size}"
        try:
            summary = levers(n, a.radius, a.seed, a.repeats, out, name, workdir, a.only,
                             not a.no_warmup)  # fmt: skip
            print(summary.to_markdown())
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    try:
        sizes = [int(s) for s in a.sizes.split(",")]
        df = run(
            sizes,
            a.radius,
            a.methods.split(","),
            a.seed,
            a.limit_s,
            a.naive_limit_s,
            a.repeats,
            [e for e in a.engines.split(",") if e],
            out,
            a.name,
            workdir,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_outputs(df, a.radius, info, out, a.name)
    print((out / f"{a.name}.md").read_text())


if __name__ == "__main__":
    main()
