"""Check the built site the way a reader sees it: in headless Chromium, offline.

Each page is served from ``127.0.0.1`` and opened with Playwright driving Debian's ``chromium``
(no browser download). A page passes when it loads, shows at least the images its notebook
produced, carries no traceback, error or stderr output, has every equation typeset by MathJax
(no raw TeX left), renders its stored widgets, shows a caption under every captioned figure and
a collapsed toggle for every hidden set-up cell, and requests nothing off the machine.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
#: Flags that keep Chromium from phoning home on a machine with no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class PageExpectation:
    """What a page must show: at least ``images`` pictures, ``captions`` captioned figures and
    ``hidden`` collapsed cells; math if ``math``, widgets if ``widgets``."""

    path: str
    images: int = 0
    math: bool = False
    widgets: bool = False
    captions: int = 0
    hidden: int = 0


@dataclass
class PageReport:
    """What the browser saw on one page; ``problems`` is empty when the page passes."""

    path: str
    images: int = 0
    math_typeset: int = 0
    widgets: int = 0
    captions: int = 0
    hidden: int = 0
    problems: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) and yield the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


_TYPESET = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const math = document.querySelectorAll('.math, span.math, div.math');
  const typeset = document.querySelectorAll('mjx-container').length;
  const text = (document.querySelector('main') || document.body).innerText;
  const raw = /\\\\\\(|\\\\\\[|\\$\\$|\\\\begin\\{/.test(text);
  return {math: math.length, typeset: typeset, raw: raw};
}"""

_IMAGES = """() => Array.from(document.querySelectorAll('main .cell_output img'))
  .filter(img => img.complete && img.naturalWidth > 0).length"""

#: Figures with a visible caption, output images whose alt text is a file name, collapsed cells.
_FIGURES = """() => ({
  captions: Array.from(document.querySelectorAll('main figure figcaption'))
    .filter(c => c.innerText.trim().length > 0).length,
  pathAlt: Array.from(document.querySelectorAll('main .cell_output img'))
    .filter(img => /\\.(png|svg|jpe?g)$/i.test(img.getAttribute('alt') || '')).length,
  hidden: document.querySelectorAll(
    'main .cell.tag_hide-cell details, main .cell.tag_hide-input details').length,
})"""


def check_page(
    page, base_url: str, expect: PageExpectation, timeout_ms: int = 60_000
) -> PageReport:
    """Open one page in an existing Playwright ``page`` and report what is wrong with it."""
    report = PageReport(expect.path)
    off_machine: list[str] = []
    failed: list[str] = []

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            r.continue_()
        else:
            off_machine.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on(
        "response", lambda resp: resp.status >= 400 and failed.append(f"{resp.status} {resp.url}")
    )
    response = page.goto(base_url + expect.path, wait_until="networkidle", timeout=timeout_ms)
    if response is None or response.status != 200:
        report.problems.append(f"page did not load (status {response and response.status})")
        return report

    errors = page.query_selector_all(".output.traceback, .output.stderr, .output.error")
    if errors:
        first = errors[0].inner_text()[:300]
        report.problems.append(f"{len(errors)} error/traceback/stderr output(s), first: {first!r}")
    if "Traceback (most recent call last)" in page.inner_text("body"):
        report.problems.append("a Python traceback is printed on the page")

    report.images = page.evaluate(_IMAGES)
    if report.images < expect.images:
        report.problems.append(f"{report.images} image(s) shown, expected at least {expect.images}")

    figures = page.evaluate(_FIGURES)
    report.captions, report.hidden = figures["captions"], figures["hidden"]
    if report.captions < expect.captions:
        report.problems.append(
            f"{report.captions} captioned figure(s) shown, expected at least {expect.captions}"
        )
    if figures["pathAlt"]:
        report.problems.append(f"{figures['pathAlt']} figure(s) whose alt text is a file name")
    if report.hidden < expect.hidden:
        report.problems.append(
            f"{report.hidden} collapsed cell(s) shown, expected at least {expect.hidden}"
        )

    math = page.evaluate(_TYPESET)
    report.math_typeset = math["typeset"]
    if math["raw"]:
        report.problems.append("raw TeX left on the page (MathJax did not typeset it)")
    if expect.math and math["typeset"] == 0:
        report.problems.append("the page has equations but none was typeset")

    if expect.widgets:
        page.wait_for_timeout(500)
        report.widgets = len(
            page.query_selector_all(".jupyter-widgets, .widget-box, .widget-slider")
        )
        if report.widgets == 0:
            report.problems.append("stored widget state but no widget rendered")

    if off_machine:
        report.problems.append(
            f"{len(off_machine)} request(s) off the machine, e.g. {off_machine[0]}"
        )
    if failed:
        report.problems.append(f"{len(failed)} failed request(s), e.g. {failed[0]}")
    return report


def check_site(
    html_dir: Path, expectations: list[PageExpectation], screenshots: Path | None = None
):
    """Check every expected page of a built site in headless Chromium; return the reports.

    With ``screenshots`` (a folder), each page's top is saved there as ``<page>.png`` and its
    first captioned figure as ``<page>-figure.png``, for a human to look at.
    """
    from playwright.sync_api import sync_playwright

    reports = []
    with serve(html_dir) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for expect in expectations:
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                reports.append(check_page(page, base, expect))
                if screenshots is not None:
                    _screenshot(page, Path(screenshots), expect.path)
                page.close()
        finally:
            browser.close()
    return reports


def _screenshot(page, folder: Path, page_path: str) -> None:
    """Save the top of ``page`` and its first captioned figure as PNGs named after the page."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(page_path).stem
    page.screenshot(path=str(folder / f"{stem}.png"), full_page=False)
    figure = page.query_selector("main figure")
    if figure is not None:
        figure.scroll_into_view_if_needed()
        figure.screenshot(path=str(folder / f"{stem}-figure.png"))


def expectation_for(executed_notebook: Path, page_path: str) -> PageExpectation:
    """What a page built from ``executed_notebook`` must show: its image outputs, math, widgets."""
    import nbformat

    nb = nbformat.read(executed_notebook, as_version=4)
    images = captions = collapsed = 0
    math = False
    hidden = {"remove-output", "remove-cell", "hide-output", "hide-cell"}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and ("$" in cell.source or "{math}" in cell.source):
            math = True
        if cell.cell_type != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        collapsed += bool(tags & {"hide-cell", "hide-input"})
        if hidden & tags:
            continue
        shown = [
            out
            for out in cell.get("outputs", [])
            if "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        ]
        images += len(shown)
        if shown and cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption"):
            captions += 1
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return PageExpectation(
        page_path,
        images=images,
        math=math,
        widgets=bool(state.get("state")),
        captions=captions,
        hidden=collapsed,
    )
