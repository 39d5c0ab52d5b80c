"""How close the generator comes to the published February 2016 counts, over several days and seeds.

The generator's knobs (``synthetic.DemandConfig``: place count and Zipf weight, point share, GPS
noise, return share, walk and gap) were fitted by hand to the three published counts
(``synthetic.REAL_FEB2016``), so agreement with them is a check of that fit, not independent
evidence that the generated city is realistic.

One day scaled by 29 misses the pairs whose return starts after midnight (a day's own returns
that spill into the next day are generated, but no pair with a first trip from the day before).
``calibrate`` therefore generates ``days >= 2`` consecutive days at February's daily density and
splits the pairs it finds into those within one calendar day and those crossing a midnight
between two generated days (returns spilling past the last day are left out, as
``generated_days`` says): a 29-day month has 29 days and 28 midnights between them, so the
month's estimate is
29 x (within-day pairs per day) + 28 x (crossing pairs per midnight).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldnotes.trips.columns import micros, normalize_trips
from fieldnotes.trips.geo import check_radius
from fieldnotes.trips.oracle import return_trip_distances
from fieldnotes.trips.synthetic import FEB2016_TRIPS, REAL_FEB2016, synthetic_trips

DAY_US = 86_400 * 1_000_000
MONTH_DAYS = 29


def _check_inputs(seeds, days, radii):
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; expected at least one generator seed")
    if isinstance(days, bool) or not isinstance(days, int) or days < 2:
        raise ValueError(f"days must be an integer >= 2 (pairs across a midnight), got {days!r}")
    rs = sorted(check_radius(r) for r in radii)
    if not rs:
        raise ValueError("radii is empty; expected at least one radius in metres")
    return seeds, rs


def generated_days(trips: pd.DataFrame, days: int) -> pd.DataFrame:
    """The rows of normalized ``trips`` picked up within ``days`` whole days from the day of the
    first pick-up, as a month's file holds the trips picked up in that month.

    The generator lets the last day's returns spill past its midnight (``synthetic._day``); the
    day after it is not generated, so those returns have no partners of their own and no trips of
    the next day around them, and counting their pairs as midnight crossings would inflate them.
    """
    pick = micros(trips["pickup_time"])
    if len(pick) == 0:
        return trips
    first = pick.min() // DAY_US
    return trips[pick < (first + days) * DAY_US]


def month_pairs(trips: pd.DataFrame, radii, days: int) -> pd.DataFrame:
    """Pairs at each radius (metres) among the ``generated_days`` of normalized ``trips``
    spanning ``days`` whole days: within one calendar day, crossing one of the ``days - 1``
    midnights between them, and the 29-day month's estimate from both (one oracle search at the
    largest radius)."""
    _, rs = _check_inputs([0], days, radii)
    trips = generated_days(trips, days)
    pairs = return_trip_distances(trips, max(rs))
    t = trips.set_index("trip_id")
    day_drop = micros(t["dropoff_time"]) // DAY_US
    day_pick = micros(t["pickup_time"]) // DAY_US
    a_day = pd.Series(day_drop, index=t.index).reindex(pairs["a_id"]).to_numpy()
    b_day = pd.Series(day_pick, index=t.index).reindex(pairs["b_id"]).to_numpy()
    crossing = a_day != b_day
    rows = []
    for r in rs:
        within_r = pairs["distance_m"].to_numpy() < r
        cross = int((within_r & crossing).sum())
        same = int(within_r.sum()) - cross
        rows.append(
            {
                "r (m)": r,
                "pairs": same + cross,
                "within a day": same,
                "across midnight": cross,
                "month estimate": MONTH_DAYS * same / days + (MONTH_DAYS - 1) * cross / (days - 1),
            }
        )
    return pd.DataFrame(rows)


def calibrate(seeds, days: int, radii) -> pd.DataFrame:
    """For every seed: ``days`` days generated at February 2016's daily density, ``month_pairs``
    at each radius, the published count and the ratio month estimate / published (NaN where no
    count is published for that radius)."""
    seeds, rs = _check_inputs(seeds, days, radii)
    n = round(FEB2016_TRIPS / MONTH_DAYS * days)
    parts = []
    for seed in seeds:
        trips = normalize_trips(synthetic_trips(n, seed=seed, days=days))
        parts.append(month_pairs(trips, rs, days).assign(seed=seed))
    out = pd.concat(parts, ignore_index=True)
    out["published"] = [REAL_FEB2016.get(int(r), np.nan) if float(r).is_integer() else np.nan
                        for r in out["r (m)"]]  # fmt: skip
    out["ratio"] = out["month estimate"] / out["published"]
    return out[["seed", "r (m)", "pairs", "within a day", "across midnight", "month estimate",
                "published", "ratio"]]  # fmt: skip
