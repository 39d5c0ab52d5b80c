"""fieldnotes.classroom: `make workshop` warms what a class would wait for and smoke-tests chapters."""

import pytest
from conftest import make_book

from fieldnotes import classroom, runner

GOOD = [("markdown", "# Good: it works"), ("code", "x = n * 2")]
BAD = [("markdown", "# Bad: it raises"), ("code", "raise ValueError('broken on purpose')")]


@pytest.fixture
def mini(tmp_path):
    return make_book(tmp_path / "book", {"10-good": GOOD, "11-bad": BAD})


def test_a_raising_step_is_reported_in_one_line_and_not_ready():
    def boom():
        raise OSError("disk full\nmore detail")

    step = classroom.timed("x", boom)
    assert not step.ready and step.detail == "OSError: disk full"
    assert classroom.timed("y", lambda: "fine") == classroom.Step(
        "y", True, pytest.approx(0, abs=1), "fine"
    )


def test_without_the_registry_the_assets_step_names_what_it_could_not_fetch(monkeypatch, tmp_path):
    def offline(cache):
        raise RuntimeError("npm is missing: ...")

    monkeypatch.setattr(runner, "vendor_assets", offline)
    step = classroom.timed("site assets (npm)", lambda: classroom.fetch_assets(tmp_path))
    assert not step.ready
    assert "mathjax@3.2.2" in step.detail and "npm is not installed" in step.detail
    assert "\n" not in step.detail


def test_each_chapter_runs_once_at_workshop_size_and_a_failure_is_one_line(mini):
    steps = {s.name: s for s in classroom.run_chapters(mini)}
    assert steps["10-good"].ready and steps["10-good"].seconds > 0
    assert (mini / classroom.WORKSHOP / "notebooks" / "10-good.ipynb").is_file()
    bad = steps["11-bad"]
    assert not bad.ready and bad.detail == "failed in cell 3: ValueError: broken on purpose"
    table = classroom.report(list(steps.values()))
    assert "10-good" in table and "NOT READY" in table


def test_an_unknown_chapter_is_exit_code_2(mini, monkeypatch, capsys):
    monkeypatch.chdir(mini)
    assert classroom.main(["--only", "nope"]) == 2
    assert "unknown notebook 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_prepare_warms_deepspeed_and_spark_and_fails_on_a_broken_chapter(
    mini, monkeypatch, capsys, vendor
):
    monkeypatch.setattr(runner, "vendor_assets", lambda cache: vendor)
    monkeypatch.chdir(mini)
    assert classroom.main(["--only", "10-good"]) == 0
    out = capsys.readouterr().out
    for name in ("site assets (npm)", "DeepSpeed CPU extension", "Spark first start", "10-good"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert " ready " in line, out
    assert "sum 0..999 = 499500" in out and "2 ranks started" in out
    assert classroom.main(["--only", "10-good", "11-bad"]) == 1


def test_the_deepspeed_warm_up_names_an_importable_rank_function_under_python_m(monkeypatch):
    """`make workshop` runs `python -m fieldnotes.classroom`, where this module's own functions
    live in __main__, which spawned ranks cannot import (found by a fresh clone's workshop)."""
    from pathlib import Path

    from fieldnotes import classroom, distributed

    given = []
    monkeypatch.setattr(
        distributed, "run_on_cpu_ranks", lambda fn, n, **kw: given.append(fn) or [0, 1]
    )
    source = Path(classroom.__file__).read_text().replace('if __name__ == "__main__":', "if False:")
    as_script = {"__name__": "__main__", "__file__": classroom.__file__}
    exec(compile(source, classroom.__file__, "exec"), as_script)
    as_script["warm_deepspeed"]()
    assert [fn.__module__ for fn in given] == ["fieldnotes.classroom"]
