"""One definition of a usable trip, evaluated the same way by pandas (the oracle), Spark and DuckDB.

A trip is usable when both timestamps are present and all four coordinates are finite, non-zero
(TLC writes 0 for "no GPS fix", and the exercise drops those rows), inside the valid ranges
(|latitude| <= 90, |longitude| <= 180). Rows that break a rule are counted under the
first rule they break, in ``RULES`` order; every engine drops them before joining, so the pairs of
usable trips never depend on unusable ones. Every latitude is usable, poles included (the grids
size longitude cells per latitude band), and so are longitudes on both sides of 180 degrees (the
grids wrap around the antimeridian).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fieldnotes.trips.columns import COORDS

LATS = ("pickup_lat", "dropoff_lat")
LONS = ("pickup_lon", "dropoff_lon")
TIMES = ("pickup_time", "dropoff_time")


@dataclass(frozen=True)
class Rule:
    """A named test that marks a row unusable when it holds for any of ``columns``.

    ``test`` is ``null`` (value absent), ``missing`` (absent or NaN), ``infinite`` (+-inf),
    ``zero`` (exactly 0) or ``abs_above`` (|value| > limit).
    """

    name: str
    test: str
    columns: tuple[str, ...]
    limit: float = 0.0


RULES = (
    Rule("missing_time", "null", TIMES),
    Rule("missing_coordinate", "missing", tuple(COORDS)),
    Rule("infinite_coordinate", "infinite", tuple(COORDS)),
    Rule("zero_coordinate", "zero", tuple(COORDS)),
    Rule("latitude_out_of_range", "abs_above", LATS, 90.0),
    Rule("longitude_out_of_range", "abs_above", LONS, 180.0),
)
"""The rules in the order they are applied; a row counts under the first one it breaks."""

RULE_NAMES = tuple(rule.name for rule in RULES)

PARSE_RULES = ("unparseable_time", "unparseable_coordinate")
"""Rules a file loader applies before ``RULES``: a time or coordinate present that does not parse."""


def _pandas_hit(rule: Rule, df: pd.DataFrame) -> np.ndarray:
    """Boolean array: rows of ``df`` that break ``rule`` (NaN compares false, as rules expect)."""
    hit = np.zeros(len(df), dtype=bool)
    for c in rule.columns:
        v = df[c]
        if rule.test in ("null", "missing"):
            hit |= v.isna().to_numpy()
            continue
        x = v.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            hit |= {
                "infinite": np.isinf(x),
                "zero": x == 0,
                "abs_above": np.abs(x) > rule.limit,
            }[rule.test]
    return hit


def first_broken_rule(df: pd.DataFrame) -> np.ndarray:
    """Per row of a normalized pandas frame: index into ``RULES`` of the first rule broken, or -1."""
    out = np.full(len(df), -1, dtype=np.int64)
    for i, rule in reversed(list(enumerate(RULES))):
        out[_pandas_hit(rule, df)] = i
    return out


def removed_counts(first_broken: np.ndarray) -> dict[str, int]:
    """Rows each rule removed (every rule named, zeros included) from ``first_broken_rule``."""
    counts = np.bincount(first_broken[first_broken >= 0], minlength=len(RULES))
    return {name: int(n) for name, n in zip(RULE_NAMES, counts, strict=True)}


def _spark_hit(rule: Rule):
    """Spark Column: the row breaks ``rule`` (null where a value is absent, as SQL has it)."""
    from functools import reduce
    from operator import or_

    from pyspark.sql import functions as F

    def one(c):
        x = F.col(c)
        return {
            "null": lambda: x.isNull(),
            "missing": lambda: x.isNull() | F.isnan(x),
            "infinite": lambda: F.abs(x) == F.lit(float("inf")),
            "zero": lambda: x == F.lit(0.0),
            "abs_above": lambda: F.abs(x) > F.lit(rule.limit),
        }[rule.test]()

    return reduce(or_, [one(c) for c in rule.columns])


def spark_hits() -> list[tuple[str, object]]:
    """(rule name, Spark Column that holds when the row breaks it) for every rule, in order."""
    return [(rule.name, _spark_hit(rule)) for rule in RULES]


def spark_first_hit(hits):
    """Spark Column ``rejected``: the name of the first (name, condition) that holds, else null."""
    from pyspark.sql import functions as F

    (name, cond), *rest = hits
    col = F.when(cond, F.lit(name))
    for name, cond in rest:
        col = col.when(cond, F.lit(name))
    return col.alias("rejected")


def spark_rejected():
    """Spark Column ``rejected``: the first rule a row breaks (its name), or null when usable."""
    return spark_first_hit(spark_hits())


def _sql_hit(rule: Rule) -> str:
    """DuckDB SQL condition: the row breaks ``rule``."""
    tests = {
        "null": "{c} IS NULL",
        "missing": "({c} IS NULL OR isnan({c}))",
        "infinite": "isinf({c})",
        "zero": "{c} = 0",
        "abs_above": "abs({c}) > " + repr(rule.limit),
    }
    return " OR ".join(tests[rule.test].format(c=c) for c in rule.columns)


def sql_hits() -> list[tuple[str, str]]:
    """(rule name, DuckDB SQL condition that holds when the row breaks it) for every rule."""
    return [(rule.name, _sql_hit(rule)) for rule in RULES]


def sql_first_hit(hits) -> str:
    """DuckDB SQL: the name of the first (name, condition) that holds, else NULL."""
    return "CASE " + " ".join(f"WHEN {cond} THEN '{name}'" for name, cond in hits) + " END"
