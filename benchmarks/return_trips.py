"""Benchmark chapter 3: Spark's naive/grid/quad/ends joins vs DuckDB vs the exact oracle.

For each size N (trips over ``benchmark_days(N)`` days: N / February 2016's trips a day, rounded,
at least one, so sizes below about 196 k trips are one day at less than February's density) it writes
the calibrated synthetic trips to Parquet, and every engine reads that same file. Each engine is
timed on the query alone, with its load timed apart and written beside it (``load_seconds``):
Spark's load reads the Parquet file, applies the usable-trip rules and caches the prepared table
(``load_prepared``, once per size); its query is the action ``count()`` of ``return_trips`` over
that cache (``timed_action``, which refuses a plan that reads anything but the cache). DuckDB's
load reads the file into its table of usable trips and its query builds the table of pairs
(``timed_duckdb``, both per run). The oracle (SciPy KD-tree) is timed per whole call on the
generated frame (it has no separate load). Per method: the median of ``--repeats`` runs with the
fastest and slowest, the pairs found, the candidate pairs handed to the exact test, the join
operator Spark chose (``join_plan``) and the shuffle bytes written (Spark's REST API). A method
stops at larger N once its predicted time passes ``--limit-s``. Writes ``NAME.csv``,
``NAME.md``, ``NAME.png`` and ``NAME_machine.json`` (``--name``, default ``return_trips``).

    .venv/bin/python benchmarks/return_trips.py                      # the committed run
    .venv/bin/python benchmarks/return_trips.py --sizes 10000,100000 --radius 150
    .venv/bin/python benchmarks/return_trips.py --sizes 10000000 --methods ends --engines duckdb --name return_trips_10m
    .venv/bin/python benchmarks/return_trips.py --levers --sizes 300000   # return_trips_levers.*

``--levers`` measures the speed levers of Spark ``ends`` and of DuckDB's plan against each other
in one process on the same data, Spark's on the one prepared cache: every round runs every
variant once (the order rotated from round to round, so a variant is not always first after a
quieter or busier moment), the load average is recorded beside each run, and the summary gives
the median, fastest and slowest of the ``--repeats`` rounds. It also writes the heaviest join
keys (``key_loads``) to see skew.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fieldnotes.timings import cpu_model
from fieldnotes.trips import (
    candidate_pairs,
    normalize_trips,
    return_trips,
    return_trips_exact,
    spark_session,
    synthetic_trips,
    timed_duckdb,
)
from fieldnotes.trips.join import JoinOptions, key_loads
from fieldnotes.trips.measure import (
    benchmark_days,
    lever_summary,
    load_prepared,
    median_seconds,
    timed_action,
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


def partial_path(out: Path, name: str) -> Path:
    """Where a sweep writes its rows as it goes; ``write_outputs`` replaces ``name.csv`` with the
    complete table only at the end, so a page built during a sweep reads the last complete run."""
    return out / f"{name}.partial.csv"


def parquet_path(workdir: Path, n: int) -> Path:
    """Where :func:`trips_at` writes the ``n`` trips."""
    return workdir / f"trips_{n}.parquet"


def trips_at(n: int, seed: int, workdir: Path):
    """``n`` generated trips over ``benchmark_days(n)`` days (February's daily density from about
    196 k trips up; a smaller size is one day at a lower density), written to Parquet in
    ``workdir`` for every engine to read the way a real file would be read: (days, pandas frame,
    Parquet path)."""
    days = benchmark_days(n)
    pdf = normalize_trips(synthetic_trips(n, seed=seed, days=days))
    path = parquet_path(workdir, n)
    pdf.to_parquet(path, row_group_size=100_000)
    return days, pdf, path


def timed_duck(path: Path, r: float, repeats: int, **plan) -> dict:
    """``repeats`` runs of ``timed_duckdb`` on the Parquet file ``path``: median, fastest and
    slowest seconds of the query, the median seconds of the load, and the pairs."""
    runs = [timed_duckdb(path, r, **plan) for _ in range(repeats)]
    secs = sorted(run.query_seconds for run in runs)
    return {
        "seconds": float(np.median(secs)),
        "seconds_min": secs[0],
        "seconds_max": secs[-1],
        "load_seconds": float(np.median([run.load_seconds for run in runs])),
        "pairs": runs[-1].pairs,
    }


def run(
    sizes, r, methods, seed, limit_s, naive_limit_s, repeats, engines, out: Path, name_out, workdir
):
    """Measure every engine at every size; return the results table."""
    spark = spark_session()
    rows, stopped, last = [], set(), {}
    for n in sizes:
        days, pdf, path = trips_at(n, seed, workdir)
        spark.read.parquet(str(path)).count()  # untimed warm-up (a Parquet count reads metadata)
        load = load_prepared(spark.read.parquet(str(path)))
        print(f"N={n:,} days={days} repeats={repeats} Spark load {load.seconds:.2f} s", flush=True)

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
            if name == "duckdb":
                rec = {**timed_duck(path, r, repeats), "candidates": np.nan,
                       "shuffle_bytes": np.nan, "join": "hash join"}  # fmt: skip
            elif name == "oracle":
                times, res = [], None
                for _ in range(repeats):
                    secs, res = median_seconds(lambda pdf=pdf: return_trips_exact(pdf, r), 1)
                    times.append(secs)
                times.sort()
                rec = {
                    "seconds": float(np.median(times)),
                    "seconds_min": times[0],
                    "seconds_max": times[-1],
                    "load_seconds": np.nan,  # one call on the frame in memory: no load step
                    "pairs": len(res),
                    "candidates": np.nan,
                    "shuffle_bytes": np.nan,
                    "join": "KD-tree",
                }
            else:
                df = return_trips(load.prepared, r, method=name)
                rec = {**timed_action(df, load.prepared, repeats), "load_seconds": load.seconds}
                if name == "naive":
                    rec["candidates"] = load.rows * load.rows
                elif n <= 3_000_000:
                    rec["candidates"] = candidate_pairs(load.prepared, r, method=name)
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
        load.prepared.df.unpersist()
        path.unlink()  # frees the disk before the next, larger size
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SparkLever:
    """One variant of Spark ``ends``, run on the prepared cache like every other: its join
    options, runtime Spark SQL settings, and shuffle partitions per core (None: the session's)."""

    name: str
    options: JoinOptions = JoinOptions()
    conf: tuple[tuple[str, str], ...] = ()
    partitions_per_core: int | None = None

    def settings(self, cores: int) -> dict[str, str]:
        """The runtime settings of this variant on ``cores`` cores (Spark's default parallelism)."""
        conf = dict(self.conf)
        if self.partitions_per_core is not None:
            conf["spark.sql.shuffle.partitions"] = str(self.partitions_per_core * cores)
        return conf


SPARK_LEVERS = (
    SparkLever("Spark default plan (trig per candidate)"),
    SparkLever("trig once per row", JoinOptions(trig="row")),
    SparkLever("side b broadcast", JoinOptions(broadcast_b=True)),
    SparkLever("shuffled hash join", conf=(("spark.sql.join.preferSortMergeJoin", "false"),)),
    SparkLever("AQE off", conf=(("spark.sql.adaptive.enabled", "false"),)),
    *(SparkLever(f"{k} shuffle partition{'s' * (k > 1)} per core", partitions_per_core=k)
      for k in (1, 8, 32)),
)  # fmt: skip
DUCK_PLANS = (
    {"trig": "candidate", "time_in_key": True},  # return_trips_duckdb's defaults: the baseline
    {"trig": "row", "time_in_key": True},
    {"trig": "candidate", "time_in_key": False},
)
"""DuckDB's plan variants, as arguments of ``timed_duckdb``; ``duck_lever_name`` names them."""


def duck_lever_name(plan: dict) -> str:
    """What a DuckDB plan variant changes, in words, read from its arguments (so a label cannot
    say one thing while the run does another)."""
    trig = {"candidate": "trig per candidate", "row": "trig once per row"}[plan["trig"]]
    time = ("8-hour bucket in the key" if plan["time_in_key"]
            else "cells only in the key, 8-hour band in the join condition")  # fmt: skip
    return f"DuckDB: {trig}, {time}"


def lever_names(only: str | None) -> list[str]:
    """The lever names ``--only`` picks (``;``-separated, each engine's first lever, its
    baseline, always included), or every lever when ``only`` is None."""
    every = [v.name for v in SPARK_LEVERS] + [duck_lever_name(p) for p in DUCK_PLANS]
    if only is None:
        return every
    picked = {x.strip() for x in only.split(";") if x.strip()}
    unknown = sorted(picked - set(every))
    if unknown:
        raise ValueError(f"--only names unknown lever(s) {unknown}; levers are {every}")
    picked |= {SPARK_LEVERS[0].name, duck_lever_name(DUCK_PLANS[0])}
    return [x for x in every if x in picked]


def _spark_lever(spark, prepared, r: float, lever: SparkLever) -> dict:
    """One timed count of ``ends`` over the cached ``prepared`` trips with ``lever``'s options and
    settings (set for this run, then restored)."""
    conf = lever.settings(spark.sparkContext.defaultParallelism)
    old = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        df = return_trips(prepared, r, method="ends", options=lever.options)
        rec = timed_action(df, prepared, 1)
        return {k: rec[k] for k in ("seconds", "pairs", "shuffle_bytes", "join")}
    finally:
        for k, v in old.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)


def _duck_lever(path: Path, r: float, plan: dict) -> dict:
    """One ``timed_duckdb`` run with plan ``plan``: the query's seconds, the load's beside them."""
    run = timed_duckdb(path, r, **plan)
    return {"seconds": run.query_seconds, "load_seconds": run.load_seconds, "pairs": run.pairs,
            "shuffle_bytes": np.nan, "join": "hash join"}  # fmt: skip


def levers(n: int, r: float, seed: int, repeats: int, out: Path, name: str, workdir: Path,
           only: str | None = None, warmup: bool = True):  # fmt: skip
    """Every lever variant (or those ``only`` names, see ``lever_names``) once per round for
    ``repeats`` rounds on the same ``n`` trips, after one unrecorded warm-up run of the first
    variant unless ``warmup`` is False; writes ``name.csv`` (one row per run), ``name.md``
    (medians) and ``name_keys.csv``. Spark's variants all run on one prepared cache, loaded
    once (its seconds in ``name_machine.json``); DuckDB loads per run (``load_seconds``)."""
    keep = lever_names(only)
    info = {**machine(), "radius_m": r, "N": n, "rounds": repeats, "warmup": warmup}
    spark = spark_session()
    days, _, path = trips_at(n, seed, workdir)
    spark.read.parquet(str(path)).count()  # untimed warm-up (a Parquet count reads metadata)
    load = load_prepared(spark.read.parquet(str(path)))
    info["spark_load_seconds"] = load.seconds
    info["spark_cores"] = spark.sparkContext.defaultParallelism
    info["shuffle_partitions"] = int(spark.conf.get("spark.sql.shuffle.partitions"))
    variants = [
        (v.name, "Spark ends", lambda v=v: _spark_lever(spark, load.prepared, r, v))
        for v in SPARK_LEVERS
    ] + [
        (duck_lever_name(p), "DuckDB", lambda p=p: _duck_lever(path, r, p)) for p in DUCK_PLANS
    ]  # fmt: skip
    variants = [v for v in variants if v[0] in keep]
    if warmup:  # not recorded: the JVM's first join compiles its code paths
        variants[0][2]()
    rows = []
    for i in range(repeats):
        order = variants[i % len(variants) :] + variants[: i % len(variants)]
        for lname, engine, fn in order:
            load_avg = os.getloadavg()[0]
            rec = {"load_seconds": load.seconds, **fn()}
            rows.append({"N": n, "days": days, "round": i, "lever": lname, "engine": engine,
                         "load_average": load_avg, **rec})  # fmt: skip
            print(f"  round {i} {lname:60s} {rec['seconds']:7.2f} s load {load_avg:.1f}",
                  flush=True)  # fmt: skip
            pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
    keys = key_loads(load.prepared, r, method="ends", top=20).assign(N=n)
    keys.to_csv(out / f"{name}_keys.csv", index=False)
    summary = lever_summary(pd.DataFrame(rows))
    info["load_average_at_end"] = os.getloadavg()[0]
    (out / f"{name}_machine.json").write_text(json.dumps(info, indent=2))
    md = [
        f"Speed levers at N = {n:,}, r = {r:g} m: seconds of the query alone (Spark: the count "
        f"of `ends` over the prepared trips cached once, {load.seconds:.2f} s to load; DuckDB: "
        f"the join into a table of pairs, its load per run in `load_seconds`), median of "
        f"{repeats} rounds (every variant once per round, order rotated, "
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
    load.prepared.df.unpersist()
    return summary


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
        f"Return trips at r = {r:g} m; seconds of the query alone (median of `runs`, with the "
        f"fastest and slowest; each engine's load apart, in `load_seconds`), {info['cores']} cores ({info['cpu']}), load average "
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
    ax.set_ylabel("wall time of the query (s)")
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
    p.add_argument(
        "--levers",
        action="store_true",
        help="measure the speed levers at the first size (return_trips_levers.*)",
    )
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
        name = a.name if a.name != "return_trips" else "return_trips_levers"
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
