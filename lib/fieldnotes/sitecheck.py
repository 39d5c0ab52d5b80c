"""Check the built site the way a reader sees it: in headless Chromium, offline.

Each page is served from ``127.0.0.1`` and opened with Playwright driving Debian's ``chromium``
(no browser download). A page passes when it loads, shows at least the images its notebook
produced, carries no traceback, error or stderr output, has every equation typeset by MathJax
(no raw TeX left), renders its stored widgets, and requests nothing off the machine.
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
    """What a page must show: at least ``images`` pictures, math if ``math``, widgets if ``widgets``."""

    path: str
    images: int = 0
    math: bool = False
    widgets: bool = False


@dataclass
class PageReport:
    """What the browser saw on one page; ``problems`` is empty when the page passes."""

    path: str
    images: int = 0
    math_typeset: int = 0
    widgets: int = 0
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


def check_site(html_dir: Path, expectations: list[PageExpectation], screenshot: Path | None = None):
    """Check every expected page of a built site in headless Chromium; return the reports.

    With ``screenshot``, the first page is also saved as a PNG there (for a human to look at).
    """
    from playwright.sync_api import sync_playwright

    reports = []
    with serve(html_dir) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i, expect in enumerate(expectations):
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                reports.append(check_page(page, base, expect))
                if screenshot is not None and i == 0:
                    page.screenshot(path=str(screenshot), full_page=False)
                page.close()
        finally:
            browser.close()
    return reports


def expectation_for(executed_notebook: Path, page_path: str) -> PageExpectation:
    """What a page built from ``executed_notebook`` must show: its image outputs, math, widgets."""
    import nbformat

    nb = nbformat.read(executed_notebook, as_version=4)
    images = 0
    math = False
    hidden = {"remove-output", "remove-cell", "hide-output", "hide-cell"}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and ("$" in cell.source or "{math}" in cell.source):
            math = True
        if cell.cell_type != "code" or hidden & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {}):
                images += 1
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return PageExpectation(page_path, images=images, math=math, widgets=bool(state.get("state")))
