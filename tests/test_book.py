"""fieldnotes.book: one seeding call, key numbers written where the tests read them."""

import json
import random

import numpy as np
import pytest
import torch

from fieldnotes import book, record_key_numbers, seed_everything


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(123)
    first = draws()
    seed_everything(123)
    assert draws() == first
    seed_everything(124)
    assert draws() != first


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_seed_must_be_an_int(bad):
    with pytest.raises(TypeError, match="seed"):
        seed_everything(bad)


def test_seed_out_of_range():
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_record_key_numbers_writes_plain_json(tmp_path, monkeypatch):
    monkeypatch.setenv(book.RESULTS_ENV, str(tmp_path))
    table = record_key_numbers("01-x", {"bytes": np.int64(7), "acc": np.float32(0.5), "name": "a"})
    assert json.loads((tmp_path / "01-x.json").read_text()) == {"acc": 0.5, "bytes": 7, "name": "a"}
    assert list(table["key number"]) == ["bytes", "acc", "name"]


@pytest.mark.parametrize(
    ("chapter", "numbers", "error"),
    [
        ("", {"a": 1}, ValueError),
        ("a/b", {"a": 1}, ValueError),
        ("01-x", {}, ValueError),
        ("01-x", {"a": float("nan")}, ValueError),
        ("01-x", {"a": [1, 2]}, TypeError),
    ],
)
def test_record_key_numbers_rejects_bad_input(tmp_path, monkeypatch, chapter, numbers, error):
    monkeypatch.setenv(book.RESULTS_ENV, str(tmp_path))
    with pytest.raises(error):
        record_key_numbers(chapter, numbers)


def test_repo_root_is_the_folder_with_pyproject_and_lib():
    root = book.repo_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "lib" / "fieldnotes" / "book.py").samefile(book.__file__)


def test_glue_speaks_myst_nbs_format():
    from myst_nb.ext.glue import GLUE_PREFIX

    assert book.GLUE_PREFIX == GLUE_PREFIX


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [("a b", 1, ValueError), ("x", [1], TypeError), ("x", float("inf"), ValueError)],
)
def test_glue_refuses_bad_names_and_values(name, value, error):
    with pytest.raises(error):
        book.glue(name, value)
