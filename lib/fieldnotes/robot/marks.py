"""Marks on the map: where the robot says a plant is and what it is, scored against the plot.

A mark is ``(x m, y m, label)``, placed from the robot's own pose estimate. Scoring matches marks to
true plants one to one, nearest pair first, and only pairs closer than ``radius_m`` count
(``MARK_RADIUS_M`` unless given: half the planting pitch, so a mark can only match the plant it
stands next to or none). Precision: matched marks / marks; recall: matched plants / plants; label
accuracy: correct labels among the matched marks, with a Wilson interval (:func:`wilson_interval`)
because a field holds only about a hundred marks. The plants of a row share its line's label
except for off-types, so a mark matched to the wrong plant of the right row usually still scores
its label right: label accuracy measures the classifier, precision and recall the map. A mark shifted by about a planting pitch
matches the neighbouring plant and still counts; where the scorer knows which plant each mark was
made for (a simulation does), ``own_plant_rate`` says how many matched that very plant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MARK_RADIUS_M = 0.25
"""How close (m) a mark must be to a plant to count as marking it: half the 0.5 m planting pitch."""


@dataclass(frozen=True)
class MarkScores:
    """Mark precision, mark recall and label accuracy of matched marks (fractions; nan if there
    is nothing to divide by), the fraction of marks matched to the plant they were made for (nan
    if unknown), the counts behind them and the matching radius (m)."""

    mark_precision: float
    mark_recall: float
    label_accuracy: float
    own_plant_rate: float
    marks: int
    plants: int
    matched: int
    radius_m: float
    labels_correct: int = 0

    def label_interval(self, level: float = 0.95) -> tuple[float, float]:
        """The label accuracy's Wilson interval at ``level`` (fractions; nan if nothing matched)."""
        return wilson_interval(self.labels_correct, self.matched, level)


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (fractions) for ``successes`` out of ``trials`` at confidence
    ``level``; (nan, nan) for no trials. It stays inside [0, 1] and is sensible near 100 %."""
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials], got {successes} of {trials}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if trials == 0:
        return float("nan"), float("nan")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    p = successes / trials
    centre = (p + z**2 / (2 * trials)) / (1 + z**2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / (1 + z**2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def match_marks(marks_xy: np.ndarray, plants_xy: np.ndarray, radius_m: float) -> np.ndarray:
    """For each mark (M, 2, m) the index of the plant (P, 2, m) it is matched to, or -1: pairs are
    taken nearest first, each mark and each plant at most once, none farther than ``radius_m``."""
    marks_xy = np.asarray(marks_xy, dtype=np.float64).reshape(-1, 2)
    plants_xy = np.asarray(plants_xy, dtype=np.float64).reshape(-1, 2)
    if not (np.isfinite(radius_m) and radius_m > 0):
        raise ValueError(f"radius_m must be a finite number > 0 m, got {radius_m}")
    if not (np.isfinite(marks_xy).all() and np.isfinite(plants_xy).all()):
        raise ValueError("marks_xy and plants_xy must be finite (metres)")
    match = np.full(len(marks_xy), -1, dtype=np.int64)
    if not len(marks_xy) or not len(plants_xy):
        return match
    dist = np.hypot(*(marks_xy[:, None, :] - plants_xy[None, :, :]).transpose(2, 0, 1))
    mi, pi = np.nonzero(dist < radius_m)
    taken = np.zeros(len(plants_xy), dtype=bool)
    for k in np.argsort(dist[mi, pi], kind="stable"):
        m, p = mi[k], pi[k]
        if match[m] < 0 and not taken[p]:
            match[m], taken[p] = p, True
    return match


def score_marks(
    marks_xy: np.ndarray,
    mark_labels: np.ndarray,
    plants_xy: np.ndarray,
    plant_labels: np.ndarray,
    radius_m: float = MARK_RADIUS_M,
    mark_plants: np.ndarray | None = None,
) -> MarkScores:
    """Precision, recall and label accuracy of marks against the plot's plants (see the module);
    ``mark_plants`` (M,) is the plant each mark was made for, if the scorer knows it."""
    mark_labels = np.asarray(mark_labels, dtype=np.int64).reshape(-1)
    plant_labels = np.asarray(plant_labels, dtype=np.int64).reshape(-1)
    match = match_marks(marks_xy, plants_xy, radius_m)
    if len(mark_labels) != len(match):
        raise ValueError(f"mark_labels has {len(mark_labels)} entries for {len(match)} marks")
    if len(plant_labels) != len(np.asarray(plants_xy).reshape(-1, 2)):
        raise ValueError("plant_labels and plants_xy differ in length")
    hit = match >= 0
    matched = int(hit.sum())
    correct = int((mark_labels[hit] == plant_labels[match[hit]]).sum())
    own = float("nan")
    if mark_plants is not None:
        mark_plants = np.asarray(mark_plants, dtype=np.int64).reshape(-1)
        if len(mark_plants) != len(match):
            raise ValueError(f"mark_plants has {len(mark_plants)} entries for {len(match)} marks")
        own = float((match == mark_plants).mean()) if len(match) else float("nan")
    return MarkScores(
        mark_precision=matched / len(match) if len(match) else float("nan"),
        mark_recall=matched / len(plant_labels) if len(plant_labels) else float("nan"),
        label_accuracy=correct / matched if matched else float("nan"),
        own_plant_rate=own,
        marks=len(match),
        plants=len(plant_labels),
        matched=matched,
        radius_m=float(radius_m),
        labels_correct=correct,
    )


def compare_words(value: float, reference: float) -> str:
    """``value`` against ``reference`` in words for the page: "above", "below" or "level with"
    (equal to four decimals)."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        raise ValueError(f"value and reference must be finite, got {value}, {reference}")
    if round(value, 4) == round(reference, 4):
        return "level with"
    return "above" if value > reference else "below"


def off_type_sentence(off_types: int, called_fertile: int) -> str:
    """The page's sentence on the off-types: how many the plot has and how many the robot's marks
    called fertile (``called_fertile`` of ``off_types``)."""
    if not 0 <= called_fertile <= off_types:
        raise ValueError(
            f"called_fertile must be in [0, off_types], got {called_fertile}, {off_types}"
        )
    if off_types == 0:
        return "This plot, at this size, has no off-type for the camera to find."
    return f"Of the {off_types} off-types, the robot's marks called {called_fertile} fertile."


def plan_camera_labels(
    mark_lane: np.ndarray, mark_prob: np.ndarray, lines: np.ndarray, threshold: float
) -> np.ndarray:
    """The planting plan's label for each mark (its lane's row's line, ``lines[mark_lane]``) unless
    the camera confidently disagrees: its mean P(male) ``mark_prob`` is at least ``threshold`` for
    a mark in a female row (an off-type), or at most ``1 − threshold`` in a male row. (M,) labels,
    1 male (fertile), 0 female."""
    lane = np.asarray(mark_lane, dtype=np.int64).reshape(-1)
    prob = np.asarray(mark_prob, dtype=np.float64).reshape(-1)
    lines = np.asarray(lines, dtype=np.int64).reshape(-1)
    if not (math.isfinite(threshold) and 0.5 <= threshold <= 1):
        raise ValueError(f"threshold must be in [0.5, 1], got {threshold}")
    if len(lane) != len(prob):
        raise ValueError(f"mark_lane has {len(lane)} entries, mark_prob {len(prob)}")
    if len(lane) and (lane.min() < 0 or lane.max() >= len(lines)):
        raise ValueError(f"mark_lane must index lines (0..{len(lines) - 1})")
    plan = lines[lane]
    flip = np.where(plan == 0, prob >= threshold, prob <= 1 - threshold)
    return np.where(flip, 1 - plan, plan).astype(np.int64)


@dataclass(frozen=True)
class LabellerScores:
    """One labeller's marks against the plants they matched: label accuracy (fraction, nan if
    none matched), off-types labelled fertile, truly sterile plants labelled fertile (false alarms:
    a plant pulled for nothing) and fertile plants labelled sterile, counts."""

    label_accuracy: float
    off_types_found: int
    sterile_called_fertile: int
    fertile_called_sterile: int


def score_labeller(
    labels: np.ndarray, match: np.ndarray, plant_label: np.ndarray, off_types: np.ndarray
) -> LabellerScores:
    """Score mark ``labels`` (M,) matched to plants by ``match`` (M,, −1 = none; from
    :func:`match_marks`) against the plants' true labels (P,) and off-type flags (P,)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    match = np.asarray(match, dtype=np.int64).reshape(-1)
    truth = np.asarray(plant_label, dtype=np.int64).reshape(-1)
    off = np.asarray(off_types, dtype=bool).reshape(-1)
    if len(labels) != len(match):
        raise ValueError(f"labels has {len(labels)} entries for {len(match)} matches")
    if len(truth) != len(off):
        raise ValueError(f"plant_label has {len(truth)} entries, off_types {len(off)}")
    hit = match >= 0
    got, want = labels[hit], truth[match[hit]]
    return LabellerScores(
        label_accuracy=float((got == want).mean()) if hit.any() else float("nan"),
        off_types_found=int((off[match[hit]] & (got == 1)).sum()),
        sterile_called_fertile=int(((want == 0) & (got == 1)).sum()),
        fertile_called_sterile=int(((want == 1) & (got == 0)).sum()),
    )
