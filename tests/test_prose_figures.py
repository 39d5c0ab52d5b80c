"""Every measured figure in a notebook's prose is glued from the run or quoted from a named source,
and every glue role is filled by the executed notebook."""

import nbformat
import pytest
from conftest import ROOT, executed

from fieldnotes import prose, runner

NOTEBOOKS = runner.toc_notebooks(ROOT)
BIB = prose.bib_keys(ROOT / "book" / "references.bib")


def notebook(tmp_path, markdown: str, quoted=None):
    """A one-cell notebook whose markdown is ``markdown`` and whose quoted list is ``quoted``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(markdown)]
    if quoted is not None:
        nb.metadata["fieldnotes"] = {"quoted": quoted}
    path = tmp_path / "99-planted.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_prose_figure_is_glued_or_quoted(name):
    found = prose.typed_figures(runner.notebook_path(ROOT, name), BIB)
    assert not found, "figures typed into the prose (glue them, or quote them with a source):\n" + (
        "\n".join(map(str, found))
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_quoted_figure_is_still_in_the_prose(name):
    assert prose.unused_quotes(runner.notebook_path(ROOT, name)) == []


def test_a_planted_hand_typed_figure_fails(tmp_path):
    path = notebook(tmp_path, "The final model reached 92.2 % on the test set.")
    found = prose.typed_figures(path, BIB)
    assert [(f.notebook, f.cell, f.figure) for f in found] == [("99-planted", 0, "92.2 %")]
    assert "99-planted, cell 0: '92.2 %'" in str(found[0])


def test_the_same_figure_glued_or_quoted_passes(tmp_path):
    glued = notebook(tmp_path, "The final model reached {glue:text}`acc:.1%` on the test set.")
    assert prose.typed_figures(glued, BIB) == []
    cited = notebook(
        tmp_path, "The post's first version took 250 s.", [{"figure": "250 s", "source": "post"}]
    )
    assert prose.typed_figures(cited, BIB) == []


def test_a_figure_typed_into_a_caption_or_alt_text_fails(tmp_path):
    path = notebook(tmp_path, "No figures here.")
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_code_cell("plot()")
    cell.metadata["mystnb"] = {
        "figure": {"caption": "Accuracy reached 97.4 %."},
        "image": {"alt": "0.83 m"},
    }
    nb.cells.append(cell)
    nbformat.write(nb, path)
    assert [f.figure for f in prose.typed_figures(path, BIB)] == ["97.4 %", "0.83 m"]


def test_a_quote_needs_a_known_source(tmp_path):
    path = notebook(tmp_path, "It took 250 s.", [{"figure": "250 s", "source": "a blog somewhere"}])
    with pytest.raises(ValueError, match="neither 'post' nor a key"):
        prose.typed_figures(path, BIB)
    path = notebook(tmp_path, "It took 250 s.", [{"figure": "250 s"}])
    with pytest.raises(ValueError, match="expected"):
        prose.typed_figures(path, BIB)


def test_a_stale_quote_is_reported(tmp_path):
    path = notebook(tmp_path, "Nothing measured here.", [{"figure": "250 s", "source": "post"}])
    assert prose.unused_quotes(path) == ["250 s"]
    quotes = [{"figure": "11.4 M", "source": "post"}, {"figure": "11.4", "source": "post"}]
    path = notebook(tmp_path, "The real file has 11.4 M rows.", quotes)
    assert prose.unused_quotes(path) == []  # the bare number is part of a figure shown


@pytest.mark.parametrize(
    ("text", "figures"),
    [
        ("accuracy 92.2 % and 84 %", ["92.2 %", "84 %"]),
        ("a 4,500× speed-up, 3x faster", ["4,500×", "3x"]),
        ("it moved 14–17 points", ["14–17 points"]),
        ("1,200 questions; 0.51 of them", ["1,200", "0.51"]),
        (
            "took 6 min, then 55 ms, 8 h, 40GB, 33.4 GiB",
            ["6 min", "55 ms", "8 h", "40GB", "33.4 GiB"],
        ),
        ("inside math $\\approx 28.3$ GB", ["28.3 GB", "28.3"]),
        ("```{dropdown} Solution\n80 / 90 ≈ 88.9 %\n```", ["88.9 %"]),
        ("a figure hidden in code: `0.922`, `92.2 %`", ["0.922", "92.2 %"]),
        (
            "55 milliseconds, a 250-second run, 8 cm, 0.6 m/s, 90°, 10 Hz",
            ["55 milliseconds", "250-second", "8 cm", "0.6 m/s", "90°", "10 Hz"],
        ),
        (
            "a 17 M-parameter model, 10 k trips, 7 B weights, a 7B model",
            ["17 M", "10 k", "7 B", "7B"],
        ),
        # not figures: grid shapes, versions with two dots, years, names, formula constants, code
        ("3×3 cells, torch 2.13.0, in 2016, BLOOMZ-7b1, ZeRO-3, 2-core", []),
        ("$(2 + 2 + K)\\Psi$ bytes, `n=0.5`, {glue:text}`acc:.1%`, {cite}`a2020`", []),
        ("see [the table](https://example.org/1.5%), <!-- 12 % -->", []),
    ],
)
def test_what_counts_as_a_figure(text, figures):
    assert prose.figures_in_markdown(text) == figures


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_glue_role_is_filled_by_the_run(ci_book, name):
    problems = prose.glue_problems(executed(ci_book, name, "its glue"))
    assert not problems, "\n".join(problems)
