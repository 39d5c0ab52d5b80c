"""Figures for chapter 3: where demand is, the grid around one drop-off, the benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fieldnotes.trips.geo import EARTH_RADIUS_M, cell_size_deg, destination


def plot_demand(trips: pd.DataFrame, ax=None):
    """Log-density map of pick-ups (normalized trips) over New York City, axes in degrees."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6.5, 6))[1]
    hb = ax.hexbin(
        trips["pickup_lon"],
        trips["pickup_lat"],
        gridsize=160,
        bins="log",
        extent=(-74.05, -73.75, 40.60, 40.85),
        cmap="magma",
        mincnt=1,
    )
    ax.set_xlabel("longitude (degrees)")
    ax.set_ylabel("latitude (degrees)")
    ax.set_aspect(1 / np.cos(np.radians(40.73)))
    ax.figure.colorbar(hb, ax=ax, label="pick-ups per hexagon (log scale)")
    return ax


def plot_neighbourhood(trips: pd.DataFrame, r: float, *, lat: float, lon: float, ax=None):
    """The grid (cells at least r wide) around a drop-off, its 3x3 neighbourhood and radius r.

    Cells are drawn with the width of the drop-off's latitude band (``geo.cell_size_deg``) and
    aligned as the joins align them (longitude counted from -180 degrees). Every row is drawn
    with that band's grid: in the joins the bands above and below have their own cell counts,
    so their cell edges are shifted against these."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    ax = ax or plt.subplots(figsize=(6.5, 6))[1]
    dlat, dlon = cell_size_deg(r, lat)
    x0 = -180.0  # the joins count longitude cells from the antimeridian
    cy, cx = int(np.floor(lat / dlat)), int(np.floor((lon - x0) / dlon))
    span = 3
    near = trips[
        (abs(trips["pickup_lat"] - lat) < (span + 0.5) * dlat)
        & (abs(trips["pickup_lon"] - lon) < (span + 0.5) * dlon)
    ]
    ax.scatter(near["pickup_lon"], near["pickup_lat"], s=4, c="0.45", label="pick-ups")
    for i in range(cy - span, cy + span + 1):
        for j in range(cx - span, cx + span + 1):
            inside = abs(i - cy) <= 1 and abs(j - cx) <= 1
            ax.add_patch(
                Rectangle(
                    (x0 + j * dlon, i * dlat),
                    dlon,
                    dlat,
                    fill=inside,
                    alpha=0.18 if inside else 1,
                    fc="tab:orange",
                    ec="0.6",
                    lw=0.6,
                )
            )
    circ = destination(np.full(90, lat), np.full(90, lon), np.linspace(0, 360, 90), r)
    ax.add_patch(
        Polygon(
            np.column_stack([circ[1], circ[0]]),
            fill=False,
            ec="tab:blue",
            lw=2,
            label=f"r = {r:g} m around the drop-off",
        )
    )
    ax.plot([lon], [lat], "*", ms=14, c="tab:red", label="trip a's drop-off")
    ax.set_xlim(x0 + (cx - span) * dlon, x0 + (cx + span + 1) * dlon)
    ax.set_ylim((cy - span) * dlat, (cy + span + 1) * dlat)
    ax.set_aspect(1 / np.cos(np.radians(lat)))
    ax.ticklabel_format(useOffset=False)
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("longitude (degrees)")
    ax.set_ylabel("latitude (degrees)")
    w = np.radians(dlon) * EARTH_RADIUS_M * np.cos(np.radians(lat))
    ax.set_title(
        f"cells {np.radians(dlat) * EARTH_RADIUS_M:.0f} m tall, {w:.0f} m wide; "
        "3x3 neighbourhood shaded"
    )
    ax.legend(loc="lower left", fontsize=8)
    return ax


def plot_benchmark(table: pd.DataFrame, ax=None):
    """Log-log wall time (s) against trips N, one line per engine, from the benchmark table."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    for name, g in table.groupby("engine", sort=False):
        g = g.sort_values("N")
        ax.loglog(g["N"], g["seconds"], "o-", label=name)
    ax.set_xlabel("trips N (count)")
    ax.set_ylabel("wall time (s): Spark the action, DuckDB/oracle the call")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def plot_calibration(calib: pd.DataFrame, ax=None):
    """Bars of return-trip pairs per month at each radius (m): the generated data's month
    estimate (median over seeds, whiskers from the lowest to the highest seed) beside the
    published count, log y.

    ``calib`` has the columns ``seed``, ``r (m)``, ``month estimate`` and ``published``
    (``calibration.calibrate``).
    """
    import matplotlib.pyplot as plt

    need = ["seed", "r (m)", "month estimate", "published"]
    missing = [c for c in need if c not in calib.columns]
    if missing:
        raise ValueError(f"calib lacks columns {missing}; expected {need}")
    per_r = calib.groupby("r (m)").agg(
        mid=("month estimate", "median"),
        lo=("month estimate", "min"),
        hi=("month estimate", "max"),
        real=("published", "first"),
        seeds=("seed", "nunique"),
    )
    ax = ax or plt.subplots(figsize=(6.5, 4))[1]
    x = np.arange(len(per_r))
    err = np.vstack([per_r["mid"] - per_r["lo"], per_r["hi"] - per_r["mid"]])
    seeds = int(per_r["seeds"].max())
    ax.bar(x - 0.2, per_r["mid"], 0.4, yerr=err, capsize=4,
           label=f"generated, month estimate ({seeds} seed{'s' if seeds > 1 else ''})")  # fmt: skip
    ax.bar(x + 0.2, per_r["real"], 0.4, label="real February 2016 (published)")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{r:g}" for r in per_r.index])
    ax.set_xlabel("matching radius r (m)")
    ax.set_ylabel("return-trip pairs in a month (count)")
    ax.set_title("Return trips: calibrated generator vs the real file")
    ax.legend()
    return ax
