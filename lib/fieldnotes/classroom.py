"""Get a machine ready for a workshop: ``make workshop`` (``python -m fieldnotes.classroom``).

A teacher runs it the day before a session, on every machine the class will use. Without
building the site it does what a learner's first run would otherwise wait for, then runs each
chapter once at workshop size as a smoke test and prints what is ready:

1. the site's vendored assets (MathJax, RequireJS, the widget manager) from the npm registry;
2. DeepSpeed's ``shm_comm`` extension, compiled once into the project cache by a two-process
   ``deepspeed.init_distributed`` (chapter 2's DeepSpeed demo builds it at its first start, 20-60 s;
   chapter 1's ranks mark it unavailable and never build it);
3. Spark's first start (the JVM, the session, one small job: chapter 3);
4. every chapter of ``_toc.yml`` executed at workshop size (the CI sizes in
   ``tests/ci_parameters.yml``, the sizes the teacher's page plans with) into ``_build/workshop/``.

A step that fails says so in one line and the others still run; with no network, the first
step names what it could not fetch. The exit code is 1 when a chapter failed, else 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldnotes import runner

WORKSHOP = runner.BUILD / "workshop"


@dataclass(frozen=True)
class Step:
    """One preparation step: what it is, whether it is ready, wall seconds, and one line on it."""

    name: str
    ready: bool
    seconds: float
    detail: str


def timed(name: str, action: Callable[[], str]) -> Step:
    """Run ``action`` (returns a one-line detail) as step ``name``; a raise becomes a failed step."""
    start = time.perf_counter()
    try:
        detail, ready = action(), True
    except Exception as e:  # noqa: BLE001 - a failed step is reported, the others still run
        first = (str(e).strip().splitlines() or [""])[0]
        detail, ready = f"{type(e).__name__}: {first}", False
    return Step(name, ready, time.perf_counter() - start, detail)


def fetch_assets(root: Path) -> str:
    """Vendor the site's JavaScript; on failure, a RuntimeError naming each package not fetched."""
    try:
        vendor = runner.vendor_assets(Path(root) / runner.BUILD)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        wanted = ", ".join(spec for spec, _, _ in runner.VENDORED.values())
        reason = "npm is not installed" if "npm is missing" in str(e) else "no npm registry"
        raise RuntimeError(f"could not fetch {wanted} ({reason}): the site cannot build") from None
    return f"{len(runner.VENDORED)} packages in {vendor}"


def _deepspeed_hello(rank: int, world_size: int) -> int:
    """A rank that starts DeepSpeed's communication layer (which builds ``shm_comm``) and returns."""
    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo")
    return rank


def warm_deepspeed() -> str:
    """Compile (or find) DeepSpeed's CPU extension by starting two gloo ranks.

    The ranks get the rank function by its importable name: under ``python -m`` (``make
    workshop``) this file runs as ``__main__``, which spawned ranks cannot import."""
    from fieldnotes import classroom
    from fieldnotes.distributed import cache_dir, run_on_cpu_ranks

    ranks = run_on_cpu_ranks(classroom._deepspeed_hello, 2, timeout_s=600.0)
    return f"{len(ranks)} ranks started; extensions in {cache_dir() / 'torch_extensions'}"


def warm_spark() -> str:
    """Start the JVM and a local SparkSession, run one job, stop it."""
    from fieldnotes.trips.session import spark_session

    spark = spark_session()
    try:
        rows = spark.range(1000).selectExpr("sum(id) AS s").collect()[0]["s"]
        return f"Spark {spark.version} ran a job (sum 0..999 = {rows})"
    finally:
        spark.stop()


def run_chapters(root: Path, names: list[str] | None = None) -> list[Step]:
    """Execute each chapter once at workshop size into ``_build/workshop``; a Step per chapter."""
    root = Path(root)
    names = names or runner.toc_notebooks(root)
    outcome = runner.execute_all(
        root,
        names,
        root / WORKSHOP,
        runner.ci_parameters(root),
        size="ci",
        results_dir=root / WORKSHOP / "results",
        keep_going=True,
        progress=True,
    )
    steps = []
    for name, result in outcome.items():
        if isinstance(result, runner.NotebookFailed):
            where = "start-up" if result.cell_index is None else f"cell {result.cell_index + 1}"
            last = (result.traceback.strip().splitlines() or [""])[-1]
            steps.append(Step(name, False, 0.0, f"failed in {where}: {last}"))
        else:
            steps.append(Step(name, True, result.seconds, f"executed copy in {result.path}"))
    return steps


def prepare(root: Path, *, chapters: list[str] | None = None) -> list[Step]:
    """Every preparation step of the module docstring, in order; returns what each did."""
    root = Path(root)
    steps = [
        timed("site assets (npm)", lambda: fetch_assets(root)),
        timed("DeepSpeed CPU extension", warm_deepspeed),
        timed("Spark first start", warm_spark),
    ]
    return steps + run_chapters(root, chapters)


def report(steps: list[Step]) -> str:
    """The steps as a plain table a teacher reads in a terminal."""
    width = max(len(s.name) for s in steps)
    lines = [f"{'step':<{width}}  {'state':<9}  {'time':>9}  detail"]
    for s in steps:
        state = "ready" if s.ready else "NOT READY"
        lines.append(f"{s.name:<{width}}  {state:<9}  {s.seconds:>7.1f} s  {s.detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: prepare this checkout for a workshop and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m fieldnotes.classroom", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="smoke-test only these chapters (default: all)"
    )
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        names = [runner.notebook_path(root, n).stem for n in args.only] if args.only else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    steps = prepare(root, chapters=names)
    print(report(steps))
    chapters = set(names or runner.toc_notebooks(root))
    return 1 if any(not s.ready for s in steps if s.name in chapters) else 0


if __name__ == "__main__":
    sys.exit(main())
