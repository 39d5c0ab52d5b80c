"""The built site, opened in headless Chromium: every chapter page loads, shows its figures,
has typeset math and no error output, and requests nothing off the machine."""

import pytest
from conftest import ROOT, selected_chapters

from fieldnotes import runner, sitecheck

pytestmark = pytest.mark.slow

PROSE = [
    sitecheck.PageExpectation("book/intro.html", math=True),
    sitecheck.PageExpectation("book/how-to-use.html"),
    sitecheck.PageExpectation("book/teaching.html"),
    sitecheck.PageExpectation("book/references.html"),
]


@pytest.fixture(scope="module")
def built(ci_book):
    staging, outcome = ci_book
    if selected_chapters() != runner.toc_notebooks(ROOT):
        pytest.skip("only some chapters were executed ($FIELDNOTES_CHAPTERS): no whole site")
    failed = [n for n, r in outcome.items() if isinstance(r, runner.NotebookFailed)]
    if failed:
        pytest.fail(f"notebooks failed, so the site is not built: {failed}", pytrace=False)
    runner.render_times(ROOT, staging)
    return staging, runner.build_site(staging).parent


def expectations(staging):
    chapters = [
        sitecheck.expectation_for(staging / "notebooks" / f"{n}.ipynb", f"notebooks/{n}.html")
        for n in runner.toc_notebooks(ROOT)
    ]
    return chapters + PROSE


def test_every_page_passes_in_the_browser(built):
    staging, html = built
    shots = ROOT / runner.BUILD / "screenshots"
    reports = sitecheck.check_site(html, expectations(staging), screenshots=shots)
    bad = {r.path: r.problems for r in reports if r.problems}
    assert not bad, bad
    for r in reports:
        print(
            f"{r.path}: {r.images} images, {r.captions} captioned, {r.hidden} collapsed cells, "
            f"{r.math_typeset} equations, {r.widgets} widgets"
        )


def test_chapter_pages_have_figures_captions_and_collapsed_setup(built):
    staging, _ = built
    for e in expectations(staging)[: len(runner.toc_notebooks(ROOT))]:
        assert e.images >= 1, f"{e.path} has no figure"
        assert e.captions >= 1, f"{e.path} has no captioned figure"
        assert e.hidden >= 1, f"{e.path} has no collapsed set-up cell"
