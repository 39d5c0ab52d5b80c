"""Words and summaries for chapter 3's prose, computed from its own tables.

A sentence such as "``quad`` compares more pairs than ``grid``" is glued from
:func:`compare` applied to the measured counts, so a rerun at another size or seed cannot
contradict its page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def sizes_text(values: Iterable) -> str:
    """Distinct integers, sorted, with thousands separators: '100,000 and 1,000,000'."""
    ns = sorted({int(_number(v, "values")) for v in values})
    if not ns:
        raise ValueError("values is empty; expected at least one size")
    text = [f"{n:,}" for n in ns]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]


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


def runs_text(runs: Iterable) -> str:
    """How a benchmark's times were taken, from its ``runs`` column: 'single runs', 'medians of
    3' or 'medians of 1 to 3 runs'."""
    rs = sorted({int(_number(v, "runs")) for v in runs})
    if not rs or rs[0] < 1:
        raise ValueError(f"runs must be counts >= 1, got {rs}")
    if rs == [1]:
        return "single runs"
    if len(rs) == 1:
        return f"medians of {rs[0]}"
    return f"medians of {rs[0]} to {rs[-1]} runs"


JOIN_WORDS = {
    "BroadcastHashJoin": "a broadcast hash join on the three keys (at this size side b is small "
    "enough to be copied to every task, so no exchange, no shuffle, is needed)",
    "SortMergeJoin": "an exchange (shuffle) of both sides on the three keys and a sort-merge join",
    "ShuffledHashJoin": "an exchange (shuffle) of both sides on the three keys and a hash join",
    "BroadcastNestedLoopJoin": "a nested-loop join that compares every pair",
    "CartesianProduct": "a cartesian product that compares every pair",
}
"""How the chapter's prose names each Spark join operator."""
