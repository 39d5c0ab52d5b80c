"""fieldnotes.buildcache: a chapter is re-executed exactly when something it depends on changed."""

import json

import pytest
from conftest import ROOT, make_book, make_notebook

from fieldnotes import buildcache, runner, timings

CHAPTER = [
    ("markdown", "# Cached: a notebook the build may reuse\n\nHalf of n is {glue:text}`half:.1f`."),
    (
        "code",
        "from fieldnotes.book import glue, record_key_numbers\n"
        "glue('half', n / 2)\nrecord_key_numbers('20-cached', {'n': n})",
    ),
]


def test_imports_are_found_absolute_relative_and_lazy():
    source = (
        "import fieldnotes.trips\nfrom fieldnotes.shop import store, Store\nimport numpy\n"
        "def f():\n    from fieldnotes import memory\n"
    )
    assert buildcache.imported_modules(source) == {
        "fieldnotes.trips",
        "fieldnotes.shop",
        "fieldnotes.shop.store",
        "fieldnotes.shop.Store",
        "fieldnotes",
        "fieldnotes.memory",
    }
    relative = "from .store import Store\nfrom ..book import glue\nfrom . import text"
    assert buildcache.imported_modules(relative, current="fieldnotes.shop.service") == {
        "fieldnotes.shop.store",
        "fieldnotes.shop.store.Store",
        "fieldnotes.book",
        "fieldnotes.book.glue",
        "fieldnotes.shop",
        "fieldnotes.shop.text",
    }
    inside = buildcache.imported_modules(
        "from .catalog import make_catalog", current="fieldnotes.shop", is_package=True
    )
    assert "fieldnotes.shop.catalog" in inside


def test_the_closure_follows_the_package_and_stops_at_its_edge():
    files = {
        p.relative_to(buildcache.package_dir()).as_posix()
        for p in buildcache.module_closure("from fieldnotes.shop.service import ChatService")
    }
    assert {"__init__.py", "shop/__init__.py", "shop/service.py", "shop/store.py"} <= files
    assert "book.py" in files  # fieldnotes/__init__ imports it
    assert not any(f.startswith(("memory/", "trips/", "vlm/", "robot/")) for f in files)


@pytest.fixture
def fake(tmp_path):
    """A repository root with a notebook and a small fake ``fieldnotes`` package beside it."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text("from fieldnotes.sub.b import g\n")
    (pkg / "sub" / "b.py").write_text("g = 1\n")
    (pkg / "sub" / "page.html").write_text("<p>hi</p>\n")
    (pkg / "other.py").write_text("h = 2\n")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "named.csv").write_text("a\n1\n")
    (tmp_path / "benchmarks" / "results" / "unnamed.csv").write_text("a\n1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    nb = make_notebook(
        tmp_path / "notebooks" / "x.ipynb",
        [
            (
                "code",
                "%matplotlib inline\nimport fieldnotes.sub\nopen('benchmarks/results/named.csv')",
            )
        ],
    )
    return tmp_path, pkg, nb


def _key(root, nb, pkg, parameters=None):
    return buildcache.cache_key(
        buildcache.notebook_inputs(root, nb, parameters or {"n": 1}, pkg=pkg)
    )


@pytest.mark.parametrize(
    ("change", "changes_key"),
    [
        ("sub/b.py", True),  # imported through sub/__init__ -> a -> b
        ("sub/page.html", True),  # a data file beside an imported module
        ("other.py", False),  # never imported
        ("results/named.csv", True),  # the notebook names it
        ("results/unnamed.csv", False),
        ("pyproject.toml", True),  # the pinned libraries
    ],
)
def test_the_key_changes_exactly_when_an_input_does(fake, change, changes_key):
    root, pkg, nb = fake
    before = _key(root, nb, pkg)
    where = {
        "results/named.csv": root / "benchmarks" / "results" / "named.csv",
        "results/unnamed.csv": root / "benchmarks" / "results" / "unnamed.csv",
        "pyproject.toml": root / "pyproject.toml",
    }.get(change, pkg / change)
    where.write_text(where.read_text() + "# changed\n")
    assert (_key(root, nb, pkg) != before) is changes_key


def test_the_key_covers_the_notebook_and_its_parameters(fake):
    root, pkg, nb = fake
    before = _key(root, nb, pkg)
    assert _key(root, nb, pkg, {"n": 2}) != before
    make_notebook(nb, [("code", "import fieldnotes.sub\n")], parameters="n = 11")
    assert _key(root, nb, pkg) != before


def test_a_lookup_needs_the_same_key_and_the_stored_copy(tmp_path):
    store = buildcache.BuildCache(tmp_path / "cache")
    executed = make_notebook(tmp_path / "done.ipynb", [])
    (tmp_path / "k.json").write_text('{"n": 1}')
    assert store.lookup("x", "k1") is None
    store.store("x", "k1", executed, tmp_path / "k.json", 12.5, "2026-12-01 10:00 UTC")
    hit = store.lookup("x", "k1")
    assert hit.seconds == 12.5 and json.loads(hit.key_numbers.read_text()) == {"n": 1}
    assert store.lookup("x", "k2") is None
    hit.notebook.unlink()
    assert store.lookup("x", "k1") is None
    (tmp_path / "cache" / "x.json").write_text("not json")
    assert store.lookup("x", "k1") is None


def _count_executions(monkeypatch):
    calls = []
    real = runner.execute

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "execute", counting)
    return calls


def test_a_second_build_with_nothing_changed_executes_nothing(tmp_path, monkeypatch):
    root = make_book(tmp_path / "book", {"20-cached": CHAPTER})
    store = buildcache.BuildCache(tmp_path / "cache")
    calls = _count_executions(monkeypatch)

    def build(results):
        return runner.execute_all(
            root,
            ["20-cached"],
            tmp_path / f"staging-{results}",
            {"20-cached": {"n": 4}},
            size="book",
            results_dir=tmp_path / results,
            build_cache=store,
        )

    first = build("r1")
    second = build("r2")
    assert calls == ["20-cached"]  # the second build ran no notebook
    assert runner.reused(first) == [] and runner.reused(second) == ["20-cached"]
    page = "notebooks/20-cached.ipynb"
    assert (tmp_path / "staging-r1" / page).read_bytes() == (
        tmp_path / "staging-r2" / page
    ).read_bytes()
    assert json.loads((tmp_path / "r2" / "20-cached.json").read_text()) == {"n": 4}
    assert not (tmp_path / "r2" / "timings.json").exists()  # nothing ran, nothing was timed
    assert second["20-cached"].seconds == first["20-cached"].seconds
    build_with_other_parameters = runner.execute_all(
        root,
        ["20-cached"],
        tmp_path / "s3",
        {"20-cached": {"n": 5}},
        size="book",
        results_dir=tmp_path / "r3",
        build_cache=store,
    )
    assert runner.reused(build_with_other_parameters) == [] and len(calls) == 2


@pytest.mark.slow
def test_the_cached_rebuild_produces_the_same_site(tmp_path, monkeypatch, vendor):
    root = make_book(tmp_path / "book", {"20-cached": CHAPTER})
    monkeypatch.setattr(runner, "vendor_assets", lambda cache: vendor)
    calls = _count_executions(monkeypatch)
    runner.book(root)
    chapter = root / runner.BUILD / "book" / "_build" / "html" / "notebooks" / "20-cached.html"
    first = chapter.read_text()
    runner.book(root)
    assert calls == ["20-cached"] and chapter.read_text() == first
    assert "Half of n is" in first
    # the reused build timed nothing, so the table keeps the first run's time
    assert timings.latest(root, "book")["20-cached"].seconds["20-cached"] > 0
    runner.book(root, fresh=True)
    assert calls == ["20-cached", "20-cached"]


def test_the_real_chapters_have_distinct_keys():
    keys = {
        name: buildcache.cache_key(
            buildcache.notebook_inputs(ROOT, runner.notebook_path(ROOT, name), {})
        )
        for name in runner.toc_notebooks(ROOT)
    }
    assert len(set(keys.values())) == len(keys)
