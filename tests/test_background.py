"""The background second runs: each notebook's rerun is a niced `runner execute --ci` with its own
results folder; a failing rerun reports its log; tests marked after_the_rest are ordered last."""

import json
import os

import pytest
from background import BackgroundReruns
from conftest import make_book

CHAPTER = [
    ("markdown", "# Rerun\n\nHalf of n is {glue:text}`half:.1f`."),
    ("code", "from fieldnotes.book import glue, record_key_numbers\n"
             "import os\nglue('half', n / 2)\nrecord_key_numbers('21-rerun', {'n': n, 'nice': os.nice(0)})"),
]
BROKEN = [("code", "raise RuntimeError('this notebook is broken')")]


def test_reruns_run_niced_at_ci_parameters_and_report_failures(tmp_path):
    root = make_book(tmp_path / "book", {"21-rerun": CHAPTER, "22-broken": BROKEN})
    reruns = BackgroundReruns(root, tmp_path / "again")
    reruns.start(["21-rerun", "22-broken"])
    good = reruns.result("21-rerun")
    assert good.returncode == 0 and good.notebook.is_file()
    numbers = json.loads((good.results / "21-rerun.json").read_text())
    assert numbers["n"] == 3 and numbers["nice"] >= min(19, os.nice(0) + 19)  # ci_parameters: n = 3
    bad = reruns.result("22-broken")
    assert bad.returncode != 0 and "this notebook is broken" in bad.log_tail
    with pytest.raises(KeyError):
        reruns.result("23-never-started")
    reruns.stop()


def test_tests_that_wait_on_the_background_run_last(request):
    items = request.session.items
    last = [i for i, item in enumerate(items) if item.get_closest_marker("after_the_rest")]
    assert last == list(range(len(items) - len(last), len(items)))
