"""Notebooks in git: no stored outputs, exactly one 'parameters' cell and it is the first code cell."""

import subprocess

import nbformat
import pytest
from conftest import ROOT

from fieldnotes import runner


def tracked_notebooks():
    out = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(out) or sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("notebooks/*.ipynb"))


NOTEBOOKS = tracked_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(ROOT / path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path}: cell {i} has stored outputs"
            assert cell.execution_count is None, f"{path}: cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_exactly_one_parameters_cell_and_it_is_first(path):
    nb = nbformat.read(ROOT / path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path}: {len(tagged)} cells tagged 'parameters'"
    assert code[0] is tagged[0], f"{path}: the parameters cell is not the first code cell"
    assert "seed" in runner.declared_parameters(ROOT / path), f"{path}: no 'seed' parameter"


@pytest.mark.parametrize("name", runner.toc_notebooks(ROOT))
def test_ci_parameters_are_declared_by_the_notebook(name):
    ci = runner.ci_parameters(ROOT)
    assert name in ci, f"{name} has no entry in tests/ci_parameters.yml"
    runner.check_parameters(runner.notebook_path(ROOT, name), ci[name])


def test_every_notebook_is_in_the_toc():
    names = {p.split("/")[-1].removesuffix(".ipynb") for p in NOTEBOOKS}
    assert names == set(runner.toc_notebooks(ROOT))
