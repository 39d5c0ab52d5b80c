"""Launch buttons that work: the cell that installs the book's package on Colab or Binder.

A reader who opens a chapter from the site's Colab or Binder button gets the notebook alone; its
``import fieldnotes`` would fail there. Every chapter therefore carries, right after its
parameters cell, an *install cell* (tagged ``remove-cell``: not shown on the page) that installs
the package from the book's repository when it is not importable, and does nothing where it is
(``make book``, ``make lab``, CI). The repository URL and branch are one setting,
``repository.url`` / ``repository.branch`` in ``_config.yml``: the launch buttons read it, the
README's clone line uses it and the install cells are written from it::

    python -m fieldnotes.launch          # rewrite every chapter's install cell from _config.yml
    python -m fieldnotes.launch --check  # exit 1 if a chapter's cell is missing or out of date

The cell is plain Python with the standard library only, because it runs before the package
exists.

Once the package is there, a chapter asks :func:`cannot_run` before a part that a free hosted
machine may not offer (a PostgreSQL server, Java for Spark, several training processes) and
prints its one-line note instead of failing with a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import yaml

#: The tag that marks the install cell (and hides it on the page).
INSTALL_TAG = "install-fieldnotes"
CELL_TEMPLATE = """\
# On Colab or Binder the book's package may be missing: install it from the book's repository.
# Where it is installed already (make book, make lab) this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("fieldnotes") is None:
    print("installing fieldnotes from {url} ({branch}) ...")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "fieldnotes @ git+{url}@{branch}"],
        check=True,
    )"""


#: Memory (GiB) a chapter's multi-process training run needs beside the notebook's kernel.
PROCESSES_MEMORY_GIB = 4.0


def hosted() -> str | None:
    """'Colab' or 'Binder' when this kernel runs on one of them (from their environment), else None."""
    if "COLAB_RELEASE_TAG" in os.environ or importlib.util.find_spec("google.colab") is not None:
        return "Colab"
    if any(k.startswith("BINDER_") for k in os.environ):
        return "Binder"
    return None


def cannot_run(feature: str) -> str | None:
    """Why ``feature`` cannot run here, in one line, or None when it can.

    ``feature`` is ``"postgresql"`` (the server programs, for chapter 5's PostgreSQL runs),
    ``"java"`` (Spark, chapter 3) or ``"processes"`` (several CPU training processes, chapters 1
    and 2: at least 2 cores and ``PROCESSES_MEMORY_GIB`` available).
    """
    from fieldnotes import preflight

    programs = {r.program: r for r in preflight.TEST}
    where = f" on {hosted()}" if hosted() else ""
    if feature == "postgresql":
        if not programs["initdb"].present():
            return f"skipped{where}: no PostgreSQL server programs (apt-get install postgresql)"
        return None
    if feature == "java":
        if not programs["java"].present():
            return f"skipped{where}: no Java for Spark (apt-get install openjdk-17-jre-headless)"
        return None
    if feature == "processes":
        import psutil

        cores, free = os.cpu_count() or 1, psutil.virtual_memory().available / 2**30
        if cores < 2 or free < PROCESSES_MEMORY_GIB:
            return (
                f"skipped{where}: the multi-process run needs 2 cores and "
                f"{PROCESSES_MEMORY_GIB:g} GiB free; this machine has {cores} and {free:.1f} GiB"
            )
        return None
    raise ValueError(f"feature must be 'postgresql', 'java' or 'processes', got {feature!r}")


def repository(root: Path) -> tuple[str, str]:
    """The book's repository URL and branch from ``_config.yml`` (a clear error if missing)."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text()) or {}
    repo = config.get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch", "main")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ValueError(f"_config.yml needs repository.url as an https:// URL, got {url!r}")
    return url.rstrip("/"), str(branch)


def install_cell_source(url: str, branch: str) -> str:
    """The install cell's code for repository ``url`` at ``branch``."""
    return CELL_TEMPLATE.format(url=url, branch=branch)


def _is_install_cell(cell) -> bool:
    return INSTALL_TAG in cell.get("metadata", {}).get("tags", [])


def install_cell_problems(notebook: Path, url: str, branch: str) -> list[str]:
    """What is wrong with ``notebook``'s install cell: missing, misplaced, outdated or shown."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = [i for i, c in enumerate(nb.cells) if _is_install_cell(c)]
    name = Path(notebook).stem
    if len(cells) != 1:
        return [f"{name}: {len(cells)} install cells (want exactly one)"]
    i = cells[0]
    problems = []
    params = [j for j, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if params and i != params[0] + 1:
        problems.append(f"{name}: the install cell is not right after the parameters cell")
    if nb.cells[i].source != install_cell_source(url, branch):
        problems.append(f"{name}: the install cell is not the one _config.yml's repository gives")
    if "remove-cell" not in nb.cells[i].metadata.get("tags", []):
        problems.append(f"{name}: the install cell is not tagged remove-cell")
    return problems


def write_install_cell(notebook: Path, url: str, branch: str) -> bool:
    """Put the install cell right after ``notebook``'s parameters cell; True if it changed."""
    import nbformat

    if not install_cell_problems(notebook, url, branch):
        return False
    nb = nbformat.read(notebook, as_version=4)
    old = [c for c in nb.cells if _is_install_cell(c)]
    nb.cells = [c for c in nb.cells if not _is_install_cell(c)]
    params = [j for j, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    if not params:
        raise ValueError(f"notebook {Path(notebook).stem} has no cell tagged 'parameters'")
    cell = nbformat.v4.new_code_cell(install_cell_source(url, branch))
    if old and "id" in old[0]:
        cell["id"] = old[0]["id"]
    cell.metadata["tags"] = [INSTALL_TAG, "remove-cell"]
    nb.cells.insert(params[0] + 1, cell)
    nbformat.write(nb, notebook)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: write (or ``--check``) every toc notebook's install cell."""
    from fieldnotes import runner

    parser = argparse.ArgumentParser(
        prog="python -m fieldnotes.launch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="only report, change nothing")
    args = parser.parse_args(argv)
    root = Path.cwd()
    url, branch = repository(root)
    paths = [runner.notebook_path(root, n) for n in runner.toc_notebooks(root)]
    if args.check:
        problems = [p for path in paths for p in install_cell_problems(path, url, branch)]
        print("\n".join(problems) or "every chapter's install cell is up to date")
        return 1 if problems else 0
    for path in paths:
        changed = write_install_cell(path, url, branch)
        print(f"{path.stem}: {'written' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
