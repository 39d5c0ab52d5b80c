"""Pages a learner enjoys: setup hidden, parameters shown, short cells, captioned figures with alt
text, and prose that talks about the book rather than its issue tracker."""

import ast
import re

import nbformat
import pytest
from conftest import ROOT, executed

from fieldnotes import runner

NOTEBOOKS = runner.toc_notebooks(ROOT)
#: Tags with which Jupyter Book collapses or hides a cell's source.
HIDING = {"hide-cell", "hide-input", "remove-cell", "remove-input"}
#: The most statements a visible code cell may hold; longer logic belongs in the package.
MAX_STATEMENTS = 15


def code_cells(name):
    nb = nbformat.read(runner.notebook_path(ROOT, name), as_version=4)
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def is_setup(tree: ast.Module) -> bool:
    """A cell that imports at top level or filters warnings is set-up, not story."""
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            return True
        if "filterwarnings" in ast.dump(node):
            return True
    return False


def parse(cell) -> ast.Module:
    lines = [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_setup_cells_are_hidden_and_the_parameters_cell_is_not(name):
    for i, cell in code_cells(name):
        if "parameters" in tags(cell):
            assert not tags(cell) & HIDING, f"{name}: the parameters cell {i} must stay visible"
        elif is_setup(parse(cell)):
            assert tags(cell) & HIDING, f"{name}: set-up cell {i} (imports/warnings) is not hidden"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_visible_code_cells_are_short(name):
    for i, cell in code_cells(name):
        if "parameters" in tags(cell) or tags(cell) & HIDING:
            continue
        n = sum(isinstance(node, ast.stmt) for node in ast.walk(parse(cell)))
        assert n <= MAX_STATEMENTS, (
            f"{name}: cell {i} holds {n} statements (at most {MAX_STATEMENTS}); "
            "move the logic into the chapter's package"
        )


def prose_pages():
    pages = [(p.name, p.read_text()) for p in sorted((ROOT / "book").glob("*.md"))]
    for name in NOTEBOOKS:
        nb = nbformat.read(runner.notebook_path(ROOT, name), as_version=4)
        pages += [
            (f"{name} cell {i}", c.source)
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown"
        ]
    return pages


def test_the_book_does_not_speak_of_issues():
    said = [where for where, text in prose_pages() if re.search(r"\bissues?\b", text, re.I)]
    assert not said, f"prose that mentions an issue (say what the book targets instead): {said}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_figure_has_a_caption_and_alt_text(ci_book, name):
    nb = nbformat.read(executed(ci_book, name, "its figures"), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or tags(cell) & {"remove-output", "remove-cell"}:
            continue
        images = [
            o for o in cell.outputs if {"image/png", "image/svg+xml"} & set(o.get("data", {}))
        ]
        if not images:
            continue
        meta = cell.metadata.get("mystnb", {})
        caption = meta.get("figure", {}).get("caption", "")
        alt = meta.get("image", {}).get("alt", "")
        assert len(images) == 1, f"{name}: cell {i} shows {len(images)} figures; one per cell"
        assert caption.strip(), (
            f"{name}: the figure in cell {i} has no caption (mystnb.figure.caption)"
        )
        assert alt.strip() and not re.search(r"\.(png|svg)\b", alt), (
            f"{name}: the figure in cell {i} has no alt text saying what it shows (mystnb.image.alt)"
        )
