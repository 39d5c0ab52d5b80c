"""Shared fixtures: the repository root, small throw-away books, and the CI-size executed book."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from background import BackgroundReruns

from fieldnotes import runner

ROOT = Path(__file__).resolve().parents[1]
#: Key numbers and timings of the CI-size executions (the reproducibility test reads them).
CI_RESULTS = ROOT / runner.BUILD / "ci-results" / "first"
#: While working on one chapter, ``FIELDNOTES_CHAPTERS=02-medical-vlm pytest -m slow -k 02``
#: executes only the chapters named (comma-separated); the others' notebook tests skip, and so
#: does the site test. CI never sets it.
CHAPTERS_ENV = "FIELDNOTES_CHAPTERS"


def selected_chapters() -> list[str]:
    """The toc notebooks the CI-size book executes: all, or those ``$FIELDNOTES_CHAPTERS`` names."""
    names = runner.toc_notebooks(ROOT)
    wanted = [w.strip() for w in os.environ.get(CHAPTERS_ENV, "").split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError(
            f"{CHAPTERS_ENV} names unknown notebooks {unknown}; _toc.yml lists {names}"
        )
    return [n for n in names if n in wanted] if wanted else names


MINI_TOC = """\
format: jb-book
root: book/intro
chapters:
{chapters}
"""


def make_notebook(path: Path, cells: list[tuple[str, str]], parameters: str = "n = 10") -> Path:
    """Write a notebook whose first code cell (tagged 'parameters') is ``parameters``.

    ``cells`` are (kind, source) pairs, kind 'code' or 'markdown'.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    for kind, source in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(source))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def make_book(root: Path, notebooks: dict[str, list[tuple[str, str]]]) -> Path:
    """A small book in ``root`` with the real config and prose pages, and the given notebooks."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "book", root / "book", dirs_exist_ok=True)
    chapters = "\n".join(f"  - file: notebooks/{name}" for name in notebooks)
    (root / "_toc.yml").write_text(MINI_TOC.format(chapters=chapters))
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "ci_parameters.yml").write_text(
        "\n".join(f"{name}.ipynb: {{n: 3}}" for name in notebooks) + "\n"
    )
    for name, cells in notebooks.items():
        make_notebook(root / "notebooks" / f"{name}.ipynb", cells)
    return root


@pytest.fixture(scope="session")
def vendor() -> Path:
    """The vendored MathJax / RequireJS / widget manager (fetched once with npm pack)."""
    return runner.vendor_assets(ROOT / runner.BUILD)


#: The CI-size notebooks' second runs (see background.py), started once the first runs are done.
RERUNS = BackgroundReruns(ROOT, ROOT / runner.BUILD / "ci-results" / "again")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``after_the_rest`` run last: they wait on the background reruns, which use the
    time the rest of the suite leaves on the cores."""
    items.sort(key=lambda item: item.get_closest_marker("after_the_rest") is not None)


@pytest.fixture(scope="session")
def ci_book(vendor):
    """Every notebook in _toc.yml executed at its CI parameters into _build/ci-book.

    Returns {name: Executed or NotebookFailed}; the per-notebook tests assert on it, and the
    site test builds from the same executed copies. When it returns, the second runs of the
    notebooks that succeeded start in the background (``ci_reruns``).
    """
    staging = ROOT / runner.BUILD / "ci-book"
    for stale in (staging, CI_RESULTS):
        if stale.exists():
            shutil.rmtree(stale)
    runner.stage(ROOT, staging, vendor)
    outcome = runner.execute_all(
        ROOT,
        selected_chapters(),
        staging,
        runner.ci_parameters(ROOT),
        size="ci",
        results_dir=CI_RESULTS,
        keep_going=True,
    )
    if RERUNS.workdir.exists():
        shutil.rmtree(RERUNS.workdir)
    RERUNS.start([n for n, done in outcome.items() if not isinstance(done, runner.NotebookFailed)])
    yield staging, outcome
    RERUNS.stop()


@pytest.fixture(scope="session")
def ci_reruns(ci_book) -> BackgroundReruns:
    """The background second runs of the CI-size notebooks (wait on one with ``.result(name)``)."""
    return RERUNS


def outcome_of(ci_book, name: str) -> runner.Executed | runner.NotebookFailed:
    """How notebook ``name`` ran in the CI-size book; skips the test if it was not selected."""
    _, outcome = ci_book
    if name not in outcome:
        pytest.skip(f"{name} not among ${CHAPTERS_ENV}")
    return outcome[name]


def executed(ci_book, name: str, what: str) -> Path:
    """The CI-size executed copy of notebook ``name``; fails the test if that notebook failed."""
    if isinstance(outcome_of(ci_book, name), runner.NotebookFailed):
        pytest.fail(f"{name} failed, so {what} cannot be checked", pytrace=False)
    return ci_book[0] / "notebooks" / f"{name}.ipynb"
