"""fieldnotes.runner: papermill execution, clear errors, and a build that refuses tracebacks."""

import json

import nbformat
import pytest
from conftest import ROOT, make_book

from fieldnotes import prose, runner, timings

GOOD = [
    ("markdown", "# Good: a notebook that works\n\nEnergy $E = mc^2$; {glue:text}`half:.2f` of n."),
    (
        "code",
        "import numpy as np\nfrom fieldnotes.book import glue, record_key_numbers\n"
        "glue('half', np.float64(n / 2))\nglue('verdict', 'odd' if n % 2 else 'even')\n"
        "glue('took', 0.25, wall_time=True)\nrecord_key_numbers('10-good', {'n': n})",
    ),
]
BAD = [("code", "x = 1"), ("code", "raise ValueError('the bad cell ' + str(n))")]


@pytest.fixture
def mini(tmp_path):
    return make_book(tmp_path / "book", {"10-good": GOOD, "11-bad": BAD})


def test_toc_lists_notebooks_in_book_order(mini):
    assert runner.toc_notebooks(mini) == ["10-good", "11-bad"]


def test_every_toc_notebook_of_the_book_exists():
    for name in runner.toc_notebooks(ROOT):
        assert runner.notebook_path(ROOT, name).is_file()


@pytest.mark.parametrize("spelling", ["10-good", "10-good.ipynb", "notebooks/10-good.ipynb"])
def test_notebook_names_may_be_spelled_three_ways(mini, spelling):
    assert runner.notebook_path(mini, spelling).name == "10-good.ipynb"


def test_unknown_notebook_is_a_clear_error(mini):
    with pytest.raises(ValueError, match=r"unknown notebook 'nope'.*10-good"):
        runner.notebook_path(mini, "nope")


def test_unknown_parameter_is_a_clear_error(mini, tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['m'\].*declares \['n'\]"):
        runner.execute(mini, "10-good", tmp_path / "out.ipynb", {"m": 1})


def test_execution_injects_parameters_records_numbers_and_hides_the_injected_cell(mini, tmp_path):
    done = runner.execute(mini, "10-good", tmp_path / "out.ipynb", {"n": 7}, results_dir=tmp_path)
    assert json.loads((tmp_path / "10-good.json").read_text()) == {"n": 7}
    nb = nbformat.read(done.path, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "hide-cell" in injected[0].metadata["tags"]
    assert done.seconds > 0


def test_a_raising_notebook_fails_with_the_cells_traceback(mini, tmp_path):
    with pytest.raises(runner.NotebookFailed) as info:
        runner.execute(mini, "11-bad", tmp_path / "out.ipynb", {"n": 5})
    failed = info.value
    assert failed.name == "11-bad"
    assert failed.cell_index == 2  # in the source notebook: parameters, x = 1, raise
    assert "ValueError" in failed.traceback and "the bad cell 5" in failed.traceback
    assert "\x1b[" not in failed.traceback  # no terminal colour codes in the report


def test_cli_exit_codes(mini, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(mini)
    assert runner.main(["execute", "11-bad", str(tmp_path / "o.ipynb")]) == 1
    assert "the bad cell 10" in capsys.readouterr().err
    assert runner.main(["execute", "10-good", str(tmp_path / "o.ipynb"), "-p", "zz", "1"]) == 2
    assert "unknown parameter" in capsys.readouterr().err
    assert (
        runner.main(["execute", "10-good", str(tmp_path / "o.ipynb"), "--ci", "-p", "n", "4"]) == 0
    )
    assert runner.main(["book", "--only", "nope"]) == 2
    assert "unknown notebook(s) ['nope']" in capsys.readouterr().err


def test_parameters_from_the_command_line_are_yaml():
    assert runner._parse_parameters([["a", "3"], ["b", "0.5"], ["c", "null"], ["d", "x"]]) == {
        "a": 3,
        "b": 0.5,
        "c": None,
        "d": "x",
    }


def test_ci_parameters_cover_exactly_the_toc():
    assert set(runner.ci_parameters(ROOT)) >= set(runner.toc_notebooks(ROOT))


def write_executed(path, outputs):
    """An 'executed' notebook whose one code cell carries ``outputs`` (as if papermill ran it)."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hi')")
    cell.outputs = outputs
    nb.cells = [nbformat.v4.new_markdown_cell("# Page"), cell]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_build_refuses_a_page_with_a_traceback(mini, tmp_path, vendor):
    staging = tmp_path / "staging"
    runner.stage(mini, staging, vendor)
    write_executed(staging / "notebooks" / "10-good.ipynb", [])
    error = nbformat.v4.new_output(
        "error", ename="ValueError", evalue="boom", traceback=["Traceback...", "ValueError: boom"]
    )
    write_executed(staging / "notebooks" / "11-bad.ipynb", [error])
    with pytest.raises(RuntimeError, match=r"notebooks/11-bad.html"):
        runner.build_site(staging)


def test_build_refuses_a_page_with_stderr(mini, tmp_path, vendor):
    staging = tmp_path / "staging"
    runner.stage(mini, staging, vendor)
    write_executed(staging / "notebooks" / "10-good.ipynb", [])
    stderr = nbformat.v4.new_output("stream", name="stderr", text="a warning\n")
    write_executed(staging / "notebooks" / "11-bad.ipynb", [stderr])
    assert runner.pages_with_errors(runner.build_html(staging)) == ["notebooks/11-bad.html"]


def test_declared_parameters_survive_comments_papermill_cannot_parse(tmp_path):
    from conftest import make_notebook

    path = make_notebook(
        tmp_path / "p.ipynb",
        [],
        parameters="seed = 0\nsteps = 2  # each (= 2 micro-batches)\npath = None  # None = generated\n"
        "sizes: list = [1, 2]",
    )
    assert runner.declared_parameters(path) == {
        "seed": "0",
        "steps": "2",
        "path": "None",
        "sizes": "[1, 2]",
    }


def test_execute_all_stops_at_a_failure_or_keeps_going(mini, tmp_path, capsys):
    staging = tmp_path / "staging"
    with pytest.raises(runner.NotebookFailed):
        runner.execute_all(
            mini, ["11-bad", "10-good"], staging, {}, size="ci", results_dir=tmp_path / "r1"
        )
    assert not (staging / "notebooks" / "10-good.ipynb").exists()  # never reached
    outcome = runner.execute_all(
        mini,
        ["11-bad", "10-good"],
        staging,
        {"10-good": {"n": 2}},
        size="ci",
        results_dir=tmp_path / "r2",
        keep_going=True,
        progress=True,
    )
    assert isinstance(outcome["11-bad"], runner.NotebookFailed)
    assert isinstance(outcome["10-good"], runner.Executed)
    assert json.loads((tmp_path / "r2" / "10-good.json").read_text()) == {"n": 2}
    record = timings.read_record(tmp_path / "r2" / "timings.json")
    assert set(record.seconds) == {"10-good"} and record.size == "ci"
    dated = tmp_path / "r2" / timings.record_name(record)
    assert timings.read_record(dated) == record  # kept beside timings.json for later runs
    assert "cores" in record.machine and record.recorded.endswith("UTC")
    assert "[2/2] 10-good done in" in capsys.readouterr().out


def test_glued_values_reach_the_executed_notebook_plain_and_marked(mini, tmp_path):
    done = runner.execute(mini, "10-good", tmp_path / "out.ipynb", {"n": 7}, results_dir=tmp_path)
    values = prose.glued_values(nbformat.read(done.path, as_version=4))
    assert values == {
        "half": prose.Glued("3.5", False),
        "verdict": prose.Glued("'odd'", False),
        "took": prose.Glued("0.25", True),
    }
    assert prose.glue_problems(done.path) == []


def test_a_glue_role_the_run_cannot_fill_is_a_problem(mini, tmp_path):
    done = runner.execute(mini, "10-good", tmp_path / "out.ipynb", {"n": 7}, results_dir=tmp_path)
    nb = nbformat.read(done.path, as_version=4)
    prose_cell = next(c for c in nb.cells if c.cell_type == "markdown")
    prose_cell.source += (
        " {glue:text}`nope` {glue:text}`half` {glue}`verdict` {glue:text}`verdict:.1f`"
    )
    nbformat.write(nb, done.path)
    problems = prose.glue_problems(done.path)
    assert len(problems) == 4, problems
    assert "never glued" in problems[0] and "format spec" in problems[1]
    assert "{glue:text}" in problems[2] and "does not fit" in problems[3]


def test_the_intro_table_is_rendered_from_the_newest_records(mini, tmp_path):
    staging = tmp_path / "staging"
    runner.execute_all(
        mini, ["10-good"], staging, {}, size="ci", results_dir=mini / "_build" / "results" / "ci"
    )
    (tmp_path / "vendor").mkdir()
    runner.stage(mini, staging, tmp_path / "vendor")
    runner.render_times(mini, staging)
    intro = (staging / "book" / "intro.md").read_text()
    assert timings.INTRO_MARKER not in intro
    assert "| Good | not recorded |" in intro  # no book-size record yet; the CI one below
    record = timings.read_record(mini / "_build" / "results" / "ci" / "timings.json")
    assert timings.duration(record.seconds["10-good"]) in intro and record.recorded in intro


def test_timings_save_commits_the_records_and_rewrites_the_readme(mini, tmp_path):
    (mini / "README.md").write_text(
        f"# Mini\n\n{timings.README_BEGIN}\nold typed table\n{timings.README_END}\n\nThe end.\n"
    )
    runner.execute_all(
        mini,
        ["10-good"],
        tmp_path / "s",
        {},
        size="book",
        results_dir=mini / "_build" / "results" / "book",
    )
    table = runner.save_times(mini)
    readme = (mini / "README.md").read_text()
    assert (
        "old typed table" not in readme
        and table.strip() in readme
        and readme.endswith("The end.\n")
    )
    (committed,) = timings.committed_records(mini, "book")
    assert set(timings.read_record(committed).seconds) == {"10-good"}


def test_the_teachers_page_gets_the_times_and_the_workshop_sizes(mini, tmp_path):
    staging = tmp_path / "staging"
    (tmp_path / "vendor").mkdir()
    runner.stage(mini, staging, tmp_path / "vendor")
    runner.render_times(mini, staging)
    page = (staging / "book" / "teaching.md").read_text()
    assert runner.SIZES_MARKER not in page and timings.INTRO_MARKER not in page
    assert "| Good | `n = 3` |" in page  # the mini book's CI size
    assert "| chapter | book size (`make book`) | CI size (`make test`) |" in page


def test_execute_writes_key_numbers_where_the_environment_says(mini, tmp_path, monkeypatch):
    monkeypatch.setenv("FIELDNOTES_RESULTS_DIR", str(tmp_path / "mine"))
    runner.execute(mini, "10-good", tmp_path / "out.ipynb", {"n": 5})
    assert json.loads((tmp_path / "mine" / "10-good.json").read_text()) == {"n": 5}


def test_a_later_partial_run_keeps_the_earlier_runs_times(mini, tmp_path, monkeypatch):
    results = mini / "_build" / "results" / "book"
    runner.execute_all(mini, ["10-good"], tmp_path / "s", {}, size="book", results_dir=results)
    first = timings.read_record(results / "timings.json")
    (results / "timings.json").write_text("{}")  # as if a later run had overwritten it
    paths = timings.local_records(mini, "book")
    assert results / timings.record_name(first) in paths
