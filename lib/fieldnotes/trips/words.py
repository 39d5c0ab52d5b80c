"""Words and summaries for chapter 3's prose, computed from its own tables.

A sentence such as "``quad`` compares more pairs than ``grid``" is glued from
:func:`compare` applied to the measured counts, so a rerun at another size or seed cannot
contradict its page.
"""

from __future__ import annotations

import math

SPARK_KEYED = ("grid", "quad", "ends")
"""The keyed (non-cross-join) Spark methods, in the order the chapter introduces them."""


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "item"):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def compare(x, than, words: tuple[str, str, str] = ("fewer", "as many", "more")) -> str:
    """``words[0]`` if ``x < than``, ``words[1]`` if equal, ``words[2]`` if ``x > than``."""
    x, than = _number(x, "x"), _number(than, "than")
    if len(words) != 3:
        raise ValueError(f"words must be three words (less, equal, greater), got {words!r}")
    return words[(x > than) - (x < than) + 1]


def engine_ratios(bench):
    """Per benchmark size N (rows): best keyed Spark, DuckDB and oracle seconds, and two ratios.

    ``bench`` is the benchmark table (columns N, engine, seconds). The ratios are best Spark /
    DuckDB and oracle / best Spark, both measured in the same benchmark run.
    """
    import pandas as pd

    missing = {"N", "engine", "seconds"} - set(bench.columns)
    if missing:
        raise ValueError(f"bench lacks columns {sorted(missing)}; expected N, engine, seconds")
    wide = bench.pivot(index="N", columns="engine", values="seconds")
    spark = [m for m in SPARK_KEYED if m in wide]
    if not spark or "duckdb" not in wide or "oracle" not in wide:
        raise ValueError(
            f"bench has engines {sorted(wide.columns)}; expected a keyed Spark method, duckdb, oracle"
        )
    best = wide[spark].min(axis=1)
    return pd.DataFrame(
        {
            "best Spark (s)": best,
            "DuckDB (s)": wide["duckdb"],
            "oracle (s)": wide["oracle"],
            "best Spark / DuckDB": best / wide["duckdb"],
            "oracle / best Spark": wide["oracle"] / best,
        }
    )


def duckdb_leads_everywhere(bench) -> bool:
    """Whether DuckDB beat every Spark method at every size N in the benchmark table."""
    wide = bench.pivot(index="N", columns="engine", values="seconds")
    spark = [m for m in ("naive", *SPARK_KEYED) if m in wide]
    return bool((wide[spark].min(axis=1) > wide["duckdb"]).all())


_JOIN_OPS = (
    "BroadcastHashJoin",
    "SortMergeJoin",
    "ShuffledHashJoin",
    "BroadcastNestedLoopJoin",
    "CartesianProduct",
)


def join_words(plan: str) -> str:
    """How the prose names the join in a formatted physical plan (``df.explain("formatted")``).

    Read from the plan itself: the join operator of its tree, the side it builds or broadcasts
    (``BuildLeft`` is side a, the left of every join in the chapter; ``BuildRight`` side b),
    whether that side goes through a ``BroadcastExchange``, whether the other side is shuffled
    (an ``Exchange hashpartitioning``), and how many key columns it joins on.
    """
    import re

    if not isinstance(plan, str):
        raise TypeError(f"plan must be the text of a formatted plan, got {type(plan).__name__}")
    head = re.search(rf"({'|'.join(_JOIN_OPS)})\b([^\n(]*)\(\d+\)", plan)
    if head is None:
        raise ValueError(f"plan has no join operator ({', '.join(_JOIN_OPS)}): {plan[:300]!r}")
    op, args = head.group(1), head.group(2)
    keys = re.search(r"^Left keys \[(\d+)\]", plan, re.M)
    n_keys = int(keys.group(1)) if keys else 0
    on = "one key column" if n_keys == 1 else f"{n_keys} key columns"
    build = "a" if "BuildLeft" in args else "b" if "BuildRight" in args else None
    shuffled = "Exchange hashpartitioning" in plan
    if op == "BroadcastHashJoin":
        other = "b" if build == "a" else "a"
        how = (
            "is copied to every task (a broadcast exchange)"
            if "BroadcastExchange" in plan
            else "is copied to every task"
        )
        rest = (
            "is shuffled on the key"
            if shuffled
            else "stays where it is, with no exchange (shuffle) of its rows"
        )
        return f"a broadcast hash join on {on}: side {build} {how}, and side {other} {rest}"
    if op in ("SortMergeJoin", "ShuffledHashJoin"):
        kind = (
            "a sort-merge join" if op == "SortMergeJoin" else f"a hash join building side {build}"
        )
        return f"an exchange (shuffle) of both sides on {on} and {kind}"
    return f"a {'nested-loop join' if op == 'BroadcastNestedLoopJoin' else 'cartesian product'} that compares every pair"
