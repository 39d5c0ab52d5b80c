"""The breeding plot: parallel rows of female (male-sterile) and male (fertile) lines, with weeds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

FEMALE, MALE = 0, 1
"""Class codes used everywhere: 0 = female (male-sterile) line, 1 = male (fertile) line."""
LABELS = ("female", "male")

ROBOT_WIDTH_M = 0.69
"""Outer width of the Husky across its wheels (metres)."""
PLANT_RADIUS_M = 0.07
"""Half-width of a plant's stem as the simulation builds it (metres)."""
PLANT_JITTER_M = 0.03
"""Standard deviation of a plant's position about its planting point (metres)."""


def min_row_spacing(robot_width: float = ROBOT_WIDTH_M) -> float:
    """Narrowest row spacing (m) a robot ``robot_width`` m wide passes: its width plus a stem
    on each side."""
    return robot_width + 2 * PLANT_RADIUS_M


def parse_pattern(pattern: str) -> tuple[int, int]:
    """Parse a planting pattern ``"F:M"`` (female rows : male rows, e.g. ``"2:1"``) into two ints."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string like '2:1', got {type(pattern).__name__}")
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", pattern)
    if match is None:
        raise ValueError(f"pattern {pattern!r} does not parse; expected 'F:M' such as '2:1'")
    females, males = int(match.group(1)), int(match.group(2))
    if females + males == 0:
        raise ValueError(f"pattern {pattern!r} has no rows; expected at least one of F, M > 0")
    return females, males


def row_lines(n_rows: int, pattern: str) -> np.ndarray:
    """Line of each row (0 female, 1 male), repeating the pattern ``F:M`` from the first row."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, int | np.integer):
        raise TypeError(f"rows must be an int, got {type(n_rows).__name__}")
    if n_rows <= 0:
        raise ValueError(f"rows must be > 0, got {n_rows}")
    females, males = parse_pattern(pattern)
    unit = [FEMALE] * females + [MALE] * males
    return np.array([unit[i % len(unit)] for i in range(n_rows)], dtype=np.int64)


@dataclass
class Field:
    """A generated plot: rows along +y from y=0 to ``row_length_m``, row i at x = i · spacing."""

    n_rows: int
    row_length_m: float
    row_spacing_m: float
    pattern: str
    seed: int
    lines: np.ndarray  # (n_rows,) 0 female / 1 male
    plant_xy: np.ndarray  # (P, 2) metres
    plant_row: np.ndarray  # (P,) row index
    plant_label: np.ndarray  # (P,) ground truth, 0 female / 1 male
    weed_xy: np.ndarray  # (W, 2) metres
    gaps: int  # planting positions left empty
    plant_seed: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    pitch_m: float = 0.5  # planting pitch along a row (m): the plan, known without the plant list

    @property
    def planted_ends_m(self) -> tuple[float, float]:
        """y (m) of a row's first and last planting positions, from the planting plan."""
        return self.pitch_m / 2, self.row_length_m - self.pitch_m / 2

    @property
    def off_types(self) -> np.ndarray:
        """(P,) bool: plants whose own label is not their row's line (a fertile plant in a female
        row) — what a labeller that only knows the planting plan gets wrong."""
        return self.plant_label != self.lines[self.plant_row]

    @property
    def n_plants(self) -> int:
        """Number of crop plants (weeds excluded)."""
        return int(len(self.plant_xy))

    def row_x(self, row: int) -> float:
        """Nominal x of row ``row`` (metres)."""
        return float(row * self.row_spacing_m)

    def table(self):
        """One row per plant: id, row, line, x (m), y (m)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "plant": np.arange(self.n_plants),
                "row": self.plant_row,
                "line": [LABELS[i] for i in self.plant_label],
                "x_m": self.plant_xy[:, 0],
                "y_m": self.plant_xy[:, 1],
            }
        )


def make_field(
    rows: int = 6,
    plants_per_row: int = 20,
    row_spacing: float = 1.2,
    pattern: str = "2:1",
    seed: int = 0,
    row_length: float | None = None,
    jitter: float = PLANT_JITTER_M,
    gap_fraction: float = 0.05,
    weeds_per_row: float = 3.0,
    robot_width: float = ROBOT_WIDTH_M,
    off_type_fraction: float = 0.0,
) -> Field:
    """Generate a plot: ``plants_per_row`` planting positions per row (0.5 m apart unless
    ``row_length`` is given), Gaussian positional ``jitter`` (m, clipped at 3σ), a ``gap_fraction``
    of empty positions and Poisson-many weeds (``weeds_per_row`` on average) anywhere in the plot.
    Each plant of a female row is, with probability ``off_type_fraction``, a fertile off-type (its
    label male: it sheds pollen), drawn after everything else so the layout does not change.
    """
    lines = row_lines(rows, pattern)
    if isinstance(plants_per_row, bool) or not isinstance(plants_per_row, int | np.integer):
        raise TypeError(f"plants_per_row must be an int, got {type(plants_per_row).__name__}")
    if plants_per_row < 2:
        raise ValueError(f"plants_per_row must be >= 2, got {plants_per_row}")
    narrowest = min_row_spacing(robot_width)
    if not np.isfinite(row_spacing) or row_spacing <= narrowest:
        raise ValueError(
            f"row_spacing must be wider than the robot ({robot_width} m) plus a plant stem on each "
            f"side ({narrowest:.2f} m in all) so the robot fits between the rows, got {row_spacing}"
        )
    if not 0 <= gap_fraction < 1:
        raise ValueError(f"gap_fraction must be in [0, 1), got {gap_fraction}")
    if not (np.isfinite(off_type_fraction) and 0 <= off_type_fraction < 1):
        raise ValueError(f"off_type_fraction must be in [0, 1), got {off_type_fraction}")
    for name, value in (("jitter", jitter), ("weeds_per_row", weeds_per_row)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    pitch = 0.5
    length = float(row_length) if row_length is not None else pitch * plants_per_row
    if length <= 0:
        raise ValueError(f"row_length must be > 0, got {row_length}")
    rng = np.random.default_rng(seed)
    ys = (np.arange(plants_per_row) + 0.5) * (length / plants_per_row)
    xy, prow, plabel = [], [], []
    gaps = 0
    for r in range(rows):
        keep = rng.random(plants_per_row) >= gap_fraction
        gaps += int((~keep).sum())
        jx = np.clip(rng.normal(0, jitter, plants_per_row), -3 * jitter, 3 * jitter)
        jy = np.clip(rng.normal(0, jitter, plants_per_row), -3 * jitter, 3 * jitter)
        for k in np.flatnonzero(keep):
            xy.append((r * row_spacing + jx[k], ys[k] + jy[k]))
            prow.append(r)
            plabel.append(lines[r])
    n_weeds = int(rng.poisson(weeds_per_row * rows)) if weeds_per_row > 0 else 0
    # weeds grow anywhere in the plot, including the lanes the robot drives
    wx = rng.uniform(-0.5 * row_spacing, (rows - 0.5) * row_spacing, n_weeds)
    wy = rng.uniform(0, length, n_weeds)
    plant_xy = np.array(xy, dtype=np.float64).reshape(-1, 2)
    plant_seed = rng.integers(0, 2**31 - 1, len(plant_xy))
    plant_label = np.array(plabel, dtype=np.int64)
    if off_type_fraction > 0:
        off = (plant_label == FEMALE) & (rng.random(len(plant_label)) < off_type_fraction)
        plant_label[off] = MALE
    return Field(
        n_rows=rows,
        row_length_m=length,
        row_spacing_m=float(row_spacing),
        pattern=pattern,
        seed=seed,
        lines=lines,
        plant_xy=plant_xy,
        plant_row=np.array(prow, dtype=np.int64),
        plant_label=plant_label,
        weed_xy=np.stack([wx, wy], axis=1) if n_weeds else np.zeros((0, 2)),
        gaps=gaps,
        plant_seed=plant_seed,
        pitch_m=length / plants_per_row,
    )
