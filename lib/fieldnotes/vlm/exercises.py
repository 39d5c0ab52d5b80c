"""The chapter's checkable exercise: exercise 5, one model's closed answers under two scoring rules.

The expected answer is computed by the chapter's own scoring functions
(``evaluate.closed_accuracies``), from a model that answers ``right`` closed questions correctly,
``wrong_yes_no`` wrongly with the other of "yes"/"no", and ``wrong_other`` with a word that is
neither (the truth is "yes" or "no" throughout).
"""

from __future__ import annotations

from fieldnotes.vlm.evaluate import closed_accuracies


def exercise5_answers(
    right: int = 80, wrong_yes_no: int = 15, wrong_other: int = 5
) -> tuple[list[str], list[str]]:
    """(predictions, truths) of exercise 5's model; every count must be a non-negative int."""
    counts = {"right": right, "wrong_yes_no": wrong_yes_no, "wrong_other": wrong_other}
    bad = {
        k: v for k, v in counts.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0
    }
    if bad or right + wrong_yes_no + wrong_other == 0:
        raise ValueError(f"counts must be non-negative ints, not all 0, got {counts}")
    truths = [("yes", "no")[i % 2] for i in range(right + wrong_yes_no + wrong_other)]
    flip = {"yes": "no", "no": "yes"}
    preds = truths[:right] + [flip[t] for t in truths[right : right + wrong_yes_no]]
    preds += ["left lung"] * wrong_other  # neither "yes" nor "no" in it
    return preds, truths


def exercise5_expected(
    right: int = 80, wrong_yes_no: int = 15, wrong_other: int = 5
) -> tuple[float, float]:
    """Exercise 5's answer: (accuracy counting every question, accuracy by LLaVA-Med's rule)."""
    return closed_accuracies(*exercise5_answers(right, wrong_yes_no, wrong_other))
