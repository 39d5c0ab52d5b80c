"""fieldnotes.launch: the install cell that makes Colab and Binder launches work."""

import subprocess
import sys

import pytest
from conftest import ROOT, make_notebook

from fieldnotes import launch, runner

URL, BRANCH = "https://github.com/example/book", "main"

#: Runs an install cell with ``find_spec`` and ``subprocess.run`` replaced, printing the command.
SIMULATE = """
import importlib.util, subprocess, sys
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if (name == "fieldnotes" and MISSING) else real(name, *a)
subprocess.run = lambda cmd, check: print("RUN", cmd)
exec(CELL)
"""


def simulate(missing: bool) -> str:
    code = f"MISSING = {missing}\nCELL = {launch.install_cell_source(URL, BRANCH)!r}\n" + SIMULATE
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_a_missing_package_is_installed_from_the_books_repository():
    out = simulate(missing=True)
    assert "RUN" in out and f"fieldnotes @ git+{URL}@{BRANCH}" in out and "-m', 'pip'" in out


def test_where_the_package_is_installed_the_cell_does_nothing():
    assert "RUN" not in simulate(missing=False)


def test_the_repository_is_read_from_the_config_with_a_clear_error(tmp_path):
    url, branch = launch.repository(ROOT)
    assert url.startswith("https://") and branch
    (tmp_path / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="repository.url"):
        launch.repository(tmp_path)


def test_the_cell_is_written_after_the_parameters_once_and_checked(tmp_path):
    nb = make_notebook(tmp_path / "x.ipynb", [("code", "import fieldnotes")])
    assert launch.install_cell_problems(nb, URL, BRANCH) == [
        "x: 0 install cells (want exactly one)"
    ]
    assert launch.write_install_cell(nb, URL, BRANCH) is True
    assert launch.install_cell_problems(nb, URL, BRANCH) == []
    assert launch.write_install_cell(nb, URL, BRANCH) is False  # a second write changes nothing
    problems = launch.install_cell_problems(nb, "https://github.com/other/book", BRANCH)
    assert problems == ["x: the install cell is not the one _config.yml's repository gives"]


def test_the_readme_clones_the_configured_repository():
    url, _ = launch.repository(ROOT)
    assert f"git clone {url}" in (ROOT / "README.md").read_text()


def test_hosted_machines_are_recognised_from_their_environment(monkeypatch):
    for key in [
        k for k in launch.os.environ if k.startswith("BINDER_") or k == "COLAB_RELEASE_TAG"
    ]:
        monkeypatch.delenv(key)
    assert launch.hosted() is None
    monkeypatch.setenv("BINDER_SERVICE_HOST", "10.0.0.1")
    assert launch.hosted() == "Binder"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    assert launch.hosted() == "Colab"


def test_what_cannot_run_is_one_line(monkeypatch):
    from fieldnotes import preflight

    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")
    monkeypatch.setattr(preflight.Requirement, "present", lambda self: False)
    for feature in ("postgresql", "java"):
        note = launch.cannot_run(feature)
        assert note.startswith("skipped on Colab: ") and "\n" not in note
    monkeypatch.setattr(preflight.Requirement, "present", lambda self: True)
    assert launch.cannot_run("postgresql") is None and launch.cannot_run("java") is None
    monkeypatch.setattr(launch, "PROCESSES_MEMORY_GIB", 1e6)
    assert "GiB free" in launch.cannot_run("processes")
    monkeypatch.setattr(launch, "PROCESSES_MEMORY_GIB", 0.0)
    assert launch.cannot_run("processes") is None  # this machine: 2 cores
    with pytest.raises(ValueError, match="feature must be"):
        launch.cannot_run("gpu")


@pytest.mark.parametrize("name", runner.toc_notebooks(ROOT))
def test_every_chapter_carries_the_configured_install_cell(name):
    url, branch = launch.repository(ROOT)
    assert launch.install_cell_problems(runner.notebook_path(ROOT, name), url, branch) == [], (
        "run `python -m fieldnotes.launch` to rewrite the install cells from _config.yml"
    )
