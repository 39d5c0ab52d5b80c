"""The book runner: execute notebooks with papermill, then build the offline site with Jupyter Book 1.x.

``make book`` calls ``python -m fieldnotes.runner book``: every notebook in ``_toc.yml`` runs at its
own (book-size) defaults, stopping at the first failure with that cell's traceback; the executed
copies go into a staging tree under ``_build/`` together with the prose pages and the vendored
JavaScript, and Jupyter Book renders that tree with its own execution off. A built page that still
carries an error or stderr output fails the build.

One notebook at other parameters::

    python -m fieldnotes.runner execute 03-return-trips out.ipynb -p n_trips 10000000

Each run records how long every notebook took (``fieldnotes.timings``); the intro's table is
rendered from the newest records, and ``python -m fieldnotes.runner timings --save`` commits them.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from fieldnotes import buildcache as cache
from fieldnotes import timings as times
from fieldnotes.book import RESULTS_ENV

NOTEBOOK_DIR = "notebooks"
CI_PARAMETERS = Path("tests") / "ci_parameters.yml"
BUILD = Path("_build")
#: Book pages that carry the generated chapter-times table (at ``timings.INTRO_MARKER``).
TIMED_PAGES = ("intro.md", "teaching.md")
#: Where the teacher's page gets the table of workshop-size parameters.
SIZES_MARKER = "<!-- workshop-sizes -->"

#: npm packages vendored into the site so that no page loads anything from a CDN.
#: name -> (package spec, folder inside the package, destination under vendor/)
VENDORED = {
    "mathjax": ("mathjax@3.2.2", "es5", "mathjax"),
    "requirejs": ("requirejs@2.3.8", "require.js", "require.js"),
    "html-manager": ("@jupyter-widgets/html-manager@1.0.15", "dist", "html-manager"),
}

#: Loaded between require.js and the widget manager: the manager finds its own files (fonts)
#: through RequireJS, which would otherwise resolve them against the site root.
WIDGETS_PATHS_JS = """\
// Point RequireJS at the vendored widget manager, so its fonts load from this site.
(function () {
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  require.config({paths: {"@jupyter-widgets/html-manager/dist": here + "html-manager"}});
})();
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(RuntimeError):
    """A notebook raised: carries the notebook name, the failing cell and its traceback."""

    def __init__(self, name: str, cell_index: int | None, traceback: str):
        self.name, self.cell_index, self.traceback = name, cell_index, traceback
        where = f"cell {cell_index + 1} (counting from 1)" if cell_index is not None else "start-up"
        super().__init__(f"notebook {name} failed in {where}:\n{traceback}")


@dataclass(frozen=True)
class Executed:
    """One executed notebook: its name, where the executed copy is, and wall time in seconds.

    ``reused`` marks a copy taken from the build cache; its ``seconds`` are then those of the
    run that made it.
    """

    name: str
    path: Path
    seconds: float
    reused: bool = False


def toc_notebooks(root: Path) -> list[str]:
    """Names (e.g. ``'01-memory'``) of the notebooks listed in ``_toc.yml``, in book order."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    names: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith(f"{NOTEBOOK_DIR}/"):
                names.append(Path(f).stem)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return names


def notebook_path(root: Path, name: str) -> Path:
    """Path of notebook ``name`` ('03-return-trips', with or without folder and .ipynb)."""
    stem = Path(str(name)).name.removesuffix(".ipynb")
    path = Path(root) / NOTEBOOK_DIR / f"{stem}.ipynb"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(root) / NOTEBOOK_DIR).glob("*.ipynb"))
        raise ValueError(f"unknown notebook {name!r}; expected one of {known}")
    return path


def declared_parameters(path: Path) -> dict[str, str]:
    """The parameters a notebook declares in its ``parameters`` cell: name -> default (source).

    Parsed with :mod:`ast` (papermill's own parser gives up on lines whose comment holds
    parentheses), so every top-level assignment counts.
    """
    import ast

    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"notebook {Path(path).stem} has no cell tagged 'parameters'")
    source = cells[0].source
    declared = {}
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            if isinstance(t, ast.Name) and getattr(node, "value", None) is not None:
                declared[t.id] = ast.get_source_segment(source, node.value)
    return declared


def check_parameters(path: Path, parameters: dict) -> None:
    """Raise ValueError if ``parameters`` names anything the notebook does not declare."""
    declared = declared_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for notebook {path.stem}; "
            f"it declares {sorted(declared)}"
        )


def ci_parameters(root: Path) -> dict[str, dict]:
    """The CI-size parameters per notebook name, read from ``tests/ci_parameters.yml``."""
    raw = yaml.safe_load((Path(root) / CI_PARAMETERS).read_text()) or {}
    return {Path(k).stem: (v or {}) for k, v in raw.items()}


def _source_index(executed: Path, index: int) -> int:
    """Index of executed cell ``index`` in the source notebook (papermill's injected cell removed)."""
    import nbformat

    cells = nbformat.read(executed, as_version=4).cells[:index]
    return index - sum("injected-parameters" in c.metadata.get("tags", []) for c in cells)


def _hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``hide-cell``: collapsed on the page, not lost."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "hide-cell"]
            changed = True
    if changed:
        nbformat.write(nb, path)


def execute(
    root: Path,
    name: str,
    output: Path,
    parameters: dict | None = None,
    *,
    results_dir: Path | None = None,
    progress: bool = False,
) -> Executed:
    """Run notebook ``name`` with papermill into ``output``; raise NotebookFailed on any error.

    The kernel runs in the repository root (so relative paths such as ``benchmarks/results``
    resolve the same everywhere) and writes its key numbers into ``results_dir`` (default:
    ``$FIELDNOTES_RESULTS_DIR``, else ``_build/results``).
    """
    import logging

    import papermill
    from papermill.exceptions import PapermillExecutionError

    # Parameters were checked above with our own parser; papermill's would warn about lines it
    # cannot parse and call such parameters "unknown" although it injects them all the same.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    root = Path(root).resolve()
    source = notebook_path(root, name)
    parameters = dict(parameters or {})
    check_parameters(source, parameters)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    results = Path(results_dir or os.environ.get(RESULTS_ENV) or root / BUILD / "results").resolve()
    results.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(results)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(root),
            progress_bar=progress,
            request_save_on_cell_execute=False,
        )
    except PapermillExecutionError as e:
        trace = _ANSI.sub("", "\n".join(e.traceback))
        raise NotebookFailed(source.stem, _source_index(output, e.cell_index), trace) from None
    finally:
        if previous is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = previous
    _hide_injected_parameters(output)
    return Executed(source.stem, output, time.perf_counter() - start)


def vendor_assets(cache: Path) -> Path:
    """Fetch MathJax, RequireJS and the widget manager with ``npm pack`` into ``cache/vendor``.

    Done once; later builds reuse the folder. Returns the vendor folder.
    """
    vendor = Path(cache) / "vendor"
    if all((vendor / dest).exists() for _, _, dest in VENDORED.values()):
        return vendor
    if shutil.which("npm") is None:
        raise RuntimeError(
            "npm is missing: the site vendors MathJax, RequireJS and the widget manager "
            "from the npm registry (run `make book`, which installs it with apt)"
        )
    vendor.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec, inner, dest in VENDORED.values():
            out = subprocess.run(
                ["npm", "pack", "--silent", spec],
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            with tarfile.open(Path(tmp) / out) as tar:
                tar.extractall(Path(tmp) / dest, filter="data")
            src = Path(tmp) / dest / "package" / inner
            target = vendor / dest
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            shutil.move(str(src), target)
    (vendor / "widgets-paths.js").write_text(WIDGETS_PATHS_JS)
    return vendor


def stage(root: Path, staging: Path, vendor: Path) -> None:
    """Lay out the book's source tree (config, toc, prose pages, vendor/) in ``staging``."""
    root, staging = Path(root), Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / f, staging / f)
    shutil.copytree(root / "book", staging / "book", dirs_exist_ok=True)
    if (staging / "vendor").exists():
        shutil.rmtree(staging / "vendor")
    shutil.copytree(vendor, staging / "vendor")


def pages_with_errors(html_dir: Path) -> list[str]:
    """Built pages that carry a traceback, an error or stderr output (which must never publish)."""
    bad = []
    pattern = re.compile(r'class="output (traceback|stderr|error)')
    for page in sorted(Path(html_dir).rglob("*.html")):
        if pattern.search(page.read_text(errors="replace")):
            bad.append(str(page.relative_to(html_dir)))
    return bad


def build_html(staging: Path) -> Path:
    """Run Jupyter Book on ``staging`` and return the HTML folder (no check of the pages)."""
    staging = Path(staging)
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(staging), "--builder", "html", "--keep-going"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"jupyter-book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return staging / "_build" / "html"


def build_site(staging: Path) -> Path:
    """Build the HTML site from ``staging``; refuse pages with error output; return index.html."""
    html = build_html(staging)
    bad = pages_with_errors(html)
    if bad:
        raise RuntimeError(f"pages with error or stderr output: {bad}")
    return html / "index.html"


def _parse_parameters(pairs: list[list[str]]) -> dict:
    """``-p name value`` pairs to a dict; values are read as YAML (numbers, booleans, null)."""
    return {k: yaml.safe_load(v) for k, v in pairs}


def _reuse(cached: cache.Cached, name: str, staging: Path, results_dir: Path) -> Executed:
    """Copy a cached execution of ``name`` into the staging tree and its key numbers beside the rest."""
    target = Path(staging) / NOTEBOOK_DIR / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(cached.notebook, target)
    if cached.key_numbers is not None:
        Path(results_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy2(cached.key_numbers, Path(results_dir) / f"{name}.json")
    return Executed(name, target, cached.seconds, reused=True)


def execute_all(
    root: Path,
    names: list[str],
    staging: Path,
    sizes: dict[str, dict],
    *,
    size: str,
    results_dir: Path,
    keep_going: bool = False,
    progress: bool = False,
    build_cache: cache.BuildCache | None = None,
) -> dict[str, Executed | NotebookFailed]:
    """Execute ``names`` in order into ``staging/notebooks`` with their ``sizes`` parameters.

    Stops at the first failing notebook (raising NotebookFailed) unless ``keep_going``, which
    records the failure and goes on. With a ``build_cache``, a notebook whose inputs (see
    :mod:`fieldnotes.buildcache`) are unchanged since its last successful execution is copied
    from the cache instead (an ``Executed`` with ``reused=True``), and every
    fresh success is stored there. Writes a timing record of the notebooks that ran (``size`` is
    ``"book"`` or ``"ci"``: wall seconds, the machine, the date, the load) to
    ``results_dir/timings.json`` and a dated copy beside it, unless none ran.
    """
    load_at_start = times.load_average()
    outcome: dict[str, Executed | NotebookFailed] = {}
    ran: dict[str, float] = {}
    for i, name in enumerate(names, 1):
        parameters = sizes.get(name, {})
        key = None
        if build_cache is not None:
            source = notebook_path(root, name)
            key = cache.cache_key(cache.notebook_inputs(root, source, parameters))
            cached = build_cache.lookup(name, key)
            if cached is not None:
                outcome[name] = _reuse(cached, name, staging, results_dir)
                if progress:
                    print(
                        f"[{i}/{len(names)}] {name} reused: unchanged since its run on "
                        f"{cached.recorded} ({cached.seconds:.1f} s)",
                        flush=True,
                    )
                continue
        if progress:
            print(f"[{i}/{len(names)}] executing {name} ...", flush=True)
        try:
            outcome[name] = done = execute(
                root,
                name,
                Path(staging) / NOTEBOOK_DIR / f"{name}.ipynb",
                parameters,
                results_dir=results_dir,
                progress=progress,
            )
        except NotebookFailed as e:
            if not keep_going:
                raise
            outcome[name] = e
            continue
        ran[name] = done.seconds
        if build_cache is not None:
            build_cache.store(
                name,
                key,
                done.path,
                Path(results_dir) / f"{name}.json",
                done.seconds,
                times.utc_now(),
            )
        if progress:
            print(f"[{i}/{len(names)}] {name} done in {done.seconds:.1f} s", flush=True)
    if ran:
        record = times.new_record(size, ran, load_at_start)
        times.write_record(record, Path(results_dir) / "timings.json")
        times.write_record(record, Path(results_dir) / times.record_name(record))
    return outcome


def reused(outcome: dict[str, Executed | NotebookFailed]) -> list[str]:
    """The notebooks of an :func:`execute_all` outcome that were copied from the build cache."""
    return [n for n, r in outcome.items() if isinstance(r, Executed) and r.reused]


def chapter_titles(root: Path) -> dict[str, str]:
    """Each toc notebook's short title, from its first heading up to a colon: '1 · The memory wall'."""
    import nbformat

    titles = {}
    for name in toc_notebooks(root):
        nb = nbformat.read(notebook_path(root, name), as_version=4)
        heading = next(
            (
                line
                for c in nb.cells
                if c.cell_type == "markdown"
                for line in c.source.splitlines()
                if line.startswith("# ")
            ),
            f"# {name}",
        )
        titles[name] = heading[2:].split(":")[0].strip()
    return titles


def times_table(root: Path, *, include_local: bool = True) -> str:
    """The chapter-times table from the newest records (local runs and the committed ones)."""
    return times.chapter_times(
        chapter_titles(root),
        times.latest(root, "book", include_local=include_local),
        times.latest(root, "ci", include_local=include_local),
    )


def sizes_table(root: Path) -> str:
    """A markdown table of each toc chapter's workshop (CI) parameters, as code to paste."""
    titles, sizes = chapter_titles(root), ci_parameters(root)
    lines = ["| chapter | parameters at workshop size |", "| --- | --- |"]
    for name, title in titles.items():
        values = "; ".join(f"`{k} = {v!r}`" for k, v in sizes.get(name, {}).items())
        lines.append(f"| {title} | {values or 'the defaults'} |")
    return "\n".join(lines) + "\n"


def render_times(root: Path, staging: Path) -> None:
    """Write the generated tables into the staged pages (run after the notebooks executed)."""
    table = times_table(root)
    for page in TIMED_PAGES:
        times.render_page(Path(staging) / "book" / page, table)
    times.render_page(Path(staging) / "book" / "teaching.md", sizes_table(root), SIZES_MARKER)


def save_times(root: Path) -> str:
    """Commit-ready: copy the newest records into ``book/timings/`` and rewrite the README table.

    For each size the committed folder ends up holding exactly the records that are the newest
    for some chapter of the book (older ones are removed).
    """
    root = Path(root)
    titles = chapter_titles(root)
    for size in times.SIZES:
        by_chapter = times.latest(root, size)
        keep = {id(r): r for n, r in by_chapter.items() if n in titles}.values()
        for old in times.committed_records(root, size):
            old.unlink()
        for record in keep:
            times.write_record(record, root / times.COMMITTED / times.record_name(record))
    table = times_table(root, include_local=False)
    readme = root / "README.md"
    readme.write_text(times.replace_readme_block(readme.read_text(), table))
    return table


def book(
    root: Path, *, ci: bool = False, only: list[str] | None = None, fresh: bool = False
) -> Path:
    """Execute the toc's notebooks (book or CI sizes), build the site, return index.html.

    Notebooks whose inputs have not changed since their last successful execution at the same
    size are reused from ``_build/cache/<size>/`` (:mod:`fieldnotes.buildcache`); ``fresh``
    executes every one.
    """
    root = Path(root).resolve()
    names = toc_notebooks(root)
    if only:
        unknown = sorted({Path(n).stem for n in only} - set(names))
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; _toc.yml lists {names}")
        names = [n for n in names if n in {Path(o).stem for o in only}]
    sizes = ci_parameters(root) if ci else {}
    staging = root / BUILD / ("ci-book" if ci else "book")
    vendor = vendor_assets(root / BUILD)
    stage(root, staging, vendor)
    size = "ci" if ci else "book"
    outcome = execute_all(
        root,
        names,
        staging,
        sizes,
        size=size,
        results_dir=root / BUILD / "results" / size,
        progress=True,
        build_cache=None if fresh else cache.BuildCache(root / BUILD / "cache" / size),
    )
    again = reused(outcome)
    print(f"reused from the cache: {', '.join(again) if again else 'none'}", flush=True)
    render_times(root, staging)
    print("building the site with Jupyter Book ...", flush=True)
    index = build_site(staging)
    print(f"site: {index}")
    return index


def main(argv: list[str] | None = None) -> int:
    """Command line: ``book`` (execute all + build) or ``execute`` (one notebook)."""
    parser = argparse.ArgumentParser(
        prog="python -m fieldnotes.runner", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("book", help="execute every notebook in _toc.yml, then build the site")
    b.add_argument(
        "--ci", action="store_true", help="use the CI sizes from tests/ci_parameters.yml"
    )
    b.add_argument("--only", nargs="+", metavar="NAME", help="execute only these notebooks")
    b.add_argument(
        "--fresh",
        action="store_true",
        help="execute every notebook, even those unchanged since the last build (make book FRESH=1)",
    )
    e = sub.add_parser("execute", help="execute one notebook with papermill")
    e.add_argument("name", help="notebook name, e.g. 03-return-trips")
    e.add_argument("output", type=Path, help="where to write the executed notebook")
    e.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    e.add_argument("--ci", action="store_true", help="start from the CI sizes, then apply -p")
    t = sub.add_parser("timings", help="print the chapter-times table from the newest records")
    t.add_argument(
        "--save",
        action="store_true",
        help="also copy the newest records into book/timings/ and rewrite README.md's table",
    )
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        if args.command == "book":
            book(root, ci=args.ci, only=args.only, fresh=args.fresh)
        elif args.command == "timings":
            print(save_times(root) if args.save else times_table(root))
        else:
            params = ci_parameters(root).get(Path(args.name).stem, {}) if args.ci else {}
            params.update(_parse_parameters(args.p))
            done = execute(root, args.name, args.output, params, progress=True)
            print(f"{done.name} executed in {done.seconds:.1f} s -> {done.path}")
    except NotebookFailed as e:
        print(f"\nFAILED: {e}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
