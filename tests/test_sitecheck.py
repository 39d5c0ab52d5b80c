"""fieldnotes.sitecheck: the browser check passes a good page and fails broken ones.

This is the proof that the site test can fail: pages are built on purpose with a traceback,
with stderr output, with a missing figure and with a request off the machine.
"""

import nbformat
import pytest
from conftest import make_book

from fieldnotes import runner, sitecheck

pytestmark = pytest.mark.slow

GOOD = [
    ("markdown", "# Good page\n\nInline $a^2 + b^2 = c^2$ and display\n\n$$\\sum_i x_i$$"),
    ("code", "import matplotlib.pyplot as plt"),
    ("code", "plt.plot([0, 1], [0, 1])\nplt.xlabel('x (m)'); plt.ylabel('y (m)'); plt.show()"),
    ("code", "import ipywidgets as w\nw.IntSlider(value=n, description='n')"),
]


def write_executed(path, outputs, markdown="# Broken page"):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("do_something()")
    cell.outputs = outputs
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), cell]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def site(tmp_path_factory, vendor):
    """A built mini site: one good executed page and four broken ones."""
    names = ["20-good", "21-traceback", "22-stderr", "23-offsite", "24-noimage"]
    root = make_book(tmp_path_factory.mktemp("src"), {n: GOOD for n in names})
    good_source = root / "notebooks" / "20-good.ipynb"
    nb = nbformat.read(good_source, as_version=4)
    nb.cells[2].metadata["tags"] = ["hide-cell"]  # the import: a collapsed set-up cell
    nb.cells[3].metadata["mystnb"] = {
        "figure": {"caption": "A straight line.", "name": "fig-line"},
        "image": {"alt": "a line from (0, 0) to (1, 1)"},
    }
    nbformat.write(nb, good_source)
    staging = root / "_build" / "staging"
    runner.stage(root, staging, vendor)
    good = runner.execute(root, "20-good", staging / "notebooks" / "20-good.ipynb", {"n": 4})
    nbs = staging / "notebooks"
    error = nbformat.v4.new_output(
        "error",
        ename="KeyError",
        evalue="'x'",
        traceback=["Traceback (most recent call last)", "KeyError: 'x'"],
    )
    write_executed(nbs / "21-traceback.ipynb", [error])
    write_executed(
        nbs / "22-stderr.ipynb", [nbformat.v4.new_output("stream", name="stderr", text="oops\n")]
    )
    write_executed(
        nbs / "23-offsite.ipynb",
        [],
        markdown='# Off site\n\n<img src="https://example.invalid/tracker.png" alt="x">',
    )
    write_executed(nbs / "24-noimage.ipynb", [])
    return runner.build_html(staging), good.path


def check(site, expectation):
    html, _ = site
    (report,) = sitecheck.check_site(html, [expectation])
    return report


def test_good_page_passes(site):
    html, executed = site
    expect = sitecheck.expectation_for(executed, "notebooks/20-good.html")
    assert expect.images == 1 and expect.math and expect.widgets
    assert expect.captions == 1 and expect.hidden == 2  # the import and papermill's injected cell
    report = check(site, expect)
    assert report.problems == []
    assert report.images >= 1 and report.math_typeset >= 2 and report.widgets >= 1
    assert report.captions == 1 and report.hidden == 2


def test_uncaptioned_figure_and_unhidden_setup_fail(site):
    report = check(
        site, sitecheck.PageExpectation("notebooks/24-noimage.html", captions=1, hidden=1)
    )
    assert any("0 captioned figure(s) shown" in p for p in report.problems)
    assert any("0 collapsed cell(s) shown" in p for p in report.problems)


def test_screenshots_of_each_page(site, tmp_path):
    html, executed = site
    expect = sitecheck.expectation_for(executed, "notebooks/20-good.html")
    sitecheck.check_site(html, [expect], screenshots=tmp_path)
    assert (tmp_path / "20-good.png").stat().st_size > 1000
    assert (tmp_path / "20-good-figure.png").stat().st_size > 1000


def test_page_with_a_traceback_fails(site):
    report = check(site, sitecheck.PageExpectation("notebooks/21-traceback.html"))
    assert any("error/traceback/stderr" in p for p in report.problems)


def test_page_with_stderr_fails(site):
    report = check(site, sitecheck.PageExpectation("notebooks/22-stderr.html"))
    assert any("error/traceback/stderr" in p and "oops" in p for p in report.problems)


def test_request_off_the_machine_fails(site):
    report = check(site, sitecheck.PageExpectation("notebooks/23-offsite.html"))
    assert any("off the machine" in p and "example.invalid" in p for p in report.problems)


def test_missing_figure_fails(site):
    report = check(site, sitecheck.PageExpectation("notebooks/24-noimage.html", images=1))
    assert any("0 image(s) shown, expected at least 1" in p for p in report.problems)


def test_raw_tex_fails(tmp_path):
    """A page whose MathJax never loads keeps its TeX raw, and that is caught."""
    (tmp_path / "p.html").write_text("<html><body><main><p>\\(x^2\\)</p></main></body></html>")
    (report,) = sitecheck.check_site(tmp_path, [sitecheck.PageExpectation("p.html", math=True)])
    assert any("raw TeX" in p for p in report.problems)
    assert any("none was typeset" in p for p in report.problems)
