"""The chapter's comparison words follow the numbers they compare."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.words import compare, duckdb_leads_everywhere, engine_ratios, sizes_text


def test_compare_picks_the_word_for_each_order():
    assert compare(3, 5) == "fewer"
    assert compare(5, 5) == "as many"
    assert compare(np.int64(7), 5.0) == "more"
    assert compare(1.5, 1.0, ("slower", "as fast", "faster")) == "faster"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_compare_refuses_what_cannot_be_ordered(bad):
    with pytest.raises(ValueError, match="x must be a finite number"):
        compare(bad, 1)
    with pytest.raises(TypeError, match="than must be a number"):
        compare(1, "2")
    with pytest.raises(ValueError, match="three words"):
        compare(1, 2, ("a", "b"))


def test_sizes_text():
    assert sizes_text([1_000_000, 100_000, 100_000]) == "100,000 and 1,000,000"
    assert sizes_text([10]) == "10"
    assert sizes_text([3, 1, 2]) == "1, 2 and 3"
    with pytest.raises(ValueError, match="empty"):
        sizes_text([])


def bench(duck_secs):
    rows = []
    for n, grid, ends, duck, oracle in [(10, 4.0, 2.0, duck_secs, 1.0), (100, 9.0, 6.0, 2.0, 12.0)]:
        rows += [(n, "grid", grid), (n, "ends", ends), (n, "duckdb", duck), (n, "oracle", oracle)]
    return pd.DataFrame(rows, columns=["N", "engine", "seconds"])


def test_engine_ratios_are_measured_in_one_row():
    t = engine_ratios(bench(0.5))
    assert list(t.index) == [10, 100]
    assert t["best Spark (s)"].tolist() == [2.0, 6.0]
    assert t["best Spark / DuckDB"].tolist() == [4.0, 3.0]
    assert t["oracle / best Spark"].tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match="lacks columns"):
        engine_ratios(bench(0.5).drop(columns="seconds"))
    with pytest.raises(ValueError, match="expected a keyed Spark method"):
        engine_ratios(bench(0.5).query("engine != 'duckdb'"))


def test_duckdb_leads_only_where_it_beats_every_spark_method():
    assert duckdb_leads_everywhere(bench(0.5))
    assert not duckdb_leads_everywhere(bench(3.0))  # slower than ends at N=10


def test_runs_text():
    from fieldnotes.trips.words import runs_text

    assert runs_text([1, 1]) == "single runs"
    assert runs_text([3, 3]) == "medians of 3"
    assert runs_text([3, 1]) == "medians of 1 to 3 runs"
    with pytest.raises(ValueError, match="runs must be"):
        runs_text([0])
