"""The chapter's comparison words follow the numbers they compare."""

import math

import numpy as np
import pandas as pd
import pytest

from fieldnotes.trips.words import compare, duckdb_leads_everywhere, engine_ratios


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


BROADCAST_LEFT = """== Physical Plan ==
AdaptiveSparkPlan (19)
+- Project (18)
   +- BroadcastHashJoin Inner BuildLeft (17)
      :- BroadcastExchange (9)
      +- Project (16)

(17) BroadcastHashJoin
Left keys [1]: [k#1]
Right keys [1]: [k#2]
Join type: Inner
"""


def test_join_words_follow_the_plan():
    from fieldnotes.trips.words import join_words

    words = join_words(BROADCAST_LEFT)
    assert "side a is copied to every task (a broadcast exchange)" in words
    assert "side b stays where it is" in words and "one key column" in words
    right = BROADCAST_LEFT.replace("BuildLeft", "BuildRight")
    assert "side b is copied" in join_words(right)
    smj = BROADCAST_LEFT.replace("BroadcastHashJoin Inner BuildLeft", "SortMergeJoin Inner")
    smj = smj.replace("(17) BroadcastHashJoin", "(17) SortMergeJoin").replace("[1]", "[3]")
    assert (
        join_words(smj)
        == "an exchange (shuffle) of both sides on 3 key columns and a sort-merge join"
    )
    with pytest.raises(ValueError, match="no join operator"):
        join_words("== Physical Plan ==\nProject (1)\n")
