"""Every notebook in _toc.yml runs under papermill at its CI parameters, within 3 minutes,
and a second run of the same notebook gives identical key numbers and prose figures (the second
runs go in the background at the lowest priority while the rest of the suite runs; see
background.py)."""

import json

import nbformat
import pytest
from conftest import CI_RESULTS, ROOT, executed, outcome_of

from fieldnotes import prose, runner

pytestmark = pytest.mark.slow

CI_LIMIT_S = 180  # the book's budget per notebook at CI size on this 2-core machine


@pytest.mark.parametrize("name", runner.toc_notebooks(ROOT))
def test_notebook_executes_at_ci_size(ci_book, name):
    result = outcome_of(ci_book, name)
    if isinstance(result, runner.NotebookFailed):
        pytest.fail(str(result), pytrace=False)
    print(f"{name}: {result.seconds:.1f} s")
    assert result.seconds <= CI_LIMIT_S, f"{name} took {result.seconds:.0f} s at CI size"
    key_numbers = CI_RESULTS / f"{name}.json"
    assert key_numbers.is_file(), f"{name} did not record its key numbers"


def measured_figures(executed) -> dict[str, str]:
    """The glued values of an executed notebook that are not wall-clock times."""
    nb = nbformat.read(executed, as_version=4)
    return {k: v.text for k, v in prose.glued_values(nb).items() if not v.wall_time}


@pytest.mark.after_the_rest
@pytest.mark.parametrize("name", runner.toc_notebooks(ROOT))
def test_same_parameters_give_the_same_key_numbers_and_prose_figures(ci_book, ci_reruns, name):
    first_run = executed(ci_book, name, "its rerun")
    again = ci_reruns.result(name)
    assert again.returncode == 0, f"the second run of {name} failed:\n{again.log_tail}"
    first = json.loads((CI_RESULTS / f"{name}.json").read_text())
    second = json.loads((again.results / f"{name}.json").read_text())
    assert second == first
    assert measured_figures(again.notebook) == measured_figures(first_run)
