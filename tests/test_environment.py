"""environment.yml (conda, Binder) stays true to pyproject.toml: the same pins and the same Python."""

import re
import tomllib

import yaml
from conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_specs() -> dict[str, str]:
    """Conda dependencies as name -> version ('' when unpinned)."""
    specs = {}
    for dep in ENV["dependencies"]:
        if isinstance(dep, str):
            name, _, version = dep.partition("=")
            specs[name] = version
    return specs


def pip_lines() -> list[str]:
    return next(d["pip"] for d in ENV["dependencies"] if isinstance(d, dict))


def test_the_same_python():
    low = re.search(r">=\s*(\d+\.\d+)", PYPROJECT["requires-python"]).group(1)
    high = re.search(r"<\s*(\d+\.\d+)", PYPROJECT["requires-python"]).group(1)
    assert conda_specs()["python"] == low
    assert tuple(map(int, low.split("."))) < tuple(map(int, high.split(".")))


def test_the_same_pins_as_pyproject():
    wanted = [d for d in PYPROJECT["dependencies"] if not d.startswith("torch")]
    wanted += PYPROJECT["optional-dependencies"]["dev"]
    listed = [line for line in pip_lines() if not line.startswith("-e")]
    assert sorted(listed, key=str.lower) == sorted(wanted, key=str.lower)


def test_torch_is_the_cpu_build_of_the_pinned_version():
    (torch,) = [d for d in PYPROJECT["dependencies"] if d.startswith("torch")]
    low = re.search(r">=\s*([\d.]+)", torch).group(1)
    version = conda_specs()["pytorch-cpu"]
    assert version.startswith(low), f"environment.yml has pytorch-cpu={version}, pyproject {torch}"


def test_the_package_itself_is_installed_from_this_folder():
    assert pip_lines()[-1] == "-e .[dev]"
