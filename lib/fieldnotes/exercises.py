"""Exercises that check themselves: ``check(chapter, exercise, answer)`` says right, close or wrong.

A chapter's exercise with a numeric or set answer has a check cell under it::

    check("01-memory", 1, (None, None), gpu_memory_gib=gpu_memory_gib)   # replace None, rerun

The expected answer is computed each time, from the same functions the chapter uses and the
notebook's own parameters (passed as keywords), never read from a stored constant, so it follows
the page when a reader changes a size. Numbers are *right* within ``tolerance`` (relative) of the
expected value and *close* within ``close``; an integer one away is close; a set is close when
one element is missing or extra. The verdict says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

RIGHT, CLOSE, WRONG, UNANSWERED = "right", "close", "wrong", "no answer yet"


@dataclass(frozen=True)
class Verdict:
    """The grade of one answer and a sentence saying why; shows as that sentence in a notebook."""

    grade: str
    message: str

    def __repr__(self) -> str:
        return f"{self.grade}: {self.message}"


@dataclass(frozen=True)
class Exercise:
    """One checkable exercise: what the answer is, and how to compute it from the chapter.

    ``solve`` takes the notebook's parameters as keywords (each with a default) and returns the
    expected answer: a number, a tuple of numbers or a set. ``tolerance`` and ``close`` are
    relative to the expected value; ``hint`` is added to a wrong or close verdict.
    """

    chapter: str
    number: int
    asks: str
    solve: Callable[..., object]
    tolerance: float = 0.005
    close: float = 0.1
    hint: str = ""


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


def _grade_number(answer, expected, ex: Exercise, what: str) -> str:
    got, want = _number(answer, what), float(expected)
    error = abs(got - want)
    scale = max(abs(want), 1e-12)
    if isinstance(expected, int) and not isinstance(expected, bool):
        return RIGHT if error == 0 else CLOSE if error <= 1 else WRONG
    if error <= ex.tolerance * scale:
        return RIGHT
    return CLOSE if error <= ex.close * scale else WRONG


def grade(ex: Exercise, answer, expected) -> Verdict:
    """Compare ``answer`` with ``expected`` under ``ex``'s tolerances (see the module docstring)."""
    if answer is None or (isinstance(answer, tuple) and None in answer):
        return Verdict(UNANSWERED, f"replace None with {ex.asks} and run the cell again")
    if isinstance(expected, set | frozenset):
        if not isinstance(answer, set | frozenset | list | tuple):
            raise ValueError(f"the answer is a set of items ({ex.asks}), got {answer!r}")
        got = set(answer)
        missing, extra = sorted(expected - got, key=str), sorted(got - expected, key=str)
        if not missing and not extra:
            return Verdict(RIGHT, f"{ex.asks}: exactly these")
        how = CLOSE if len(missing) + len(extra) == 1 else WRONG
        parts = [f"missing {missing}" if missing else "", f"not expected {extra}" if extra else ""]
        return Verdict(how, "; ".join(p for p in parts if p) + (f". {ex.hint}" if ex.hint else ""))
    want = expected if isinstance(expected, tuple) else (expected,)
    got = answer if isinstance(answer, tuple | list) else (answer,)
    if len(got) != len(want):
        raise ValueError(f"the answer is {ex.asks}: {len(want)} value(s), got {answer!r}")
    grades = [
        _grade_number(a, e, ex, f"value {i + 1}")
        for i, (a, e) in enumerate(zip(got, want, strict=True))
    ]
    if all(g == RIGHT for g in grades):
        return Verdict(RIGHT, f"{ex.asks}: {_show(expected)}")
    how = CLOSE if all(g in (RIGHT, CLOSE) for g in grades) else WRONG
    off = [i + 1 for i, g in enumerate(grades) if g != RIGHT]
    which = "" if len(want) == 1 else f"value {', '.join(map(str, off))} of {ex.asks} is off; "
    close_to = "near, but not it" if how == CLOSE else "not it"
    return Verdict(how, f"{which}{_show(answer)} is {close_to}. {ex.hint}".strip())


def _show(value) -> str:
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# --- the chapters' exercises -----------------------------------------------------------------


def _bloomz_parameters() -> int:
    from fieldnotes.memory.counting import bloomz_7b1_config, count_parameters

    return count_parameters(bloomz_7b1_config())


def _memory_gpus(gpu_memory_gib: float = 40.0, psi: int | None = None) -> tuple[int, int]:
    """Chapter 1, exercise 1: the fewest GPUs for ZeRO-2 and ZeRO-1 model states, BLOOMZ-7b1."""
    from fieldnotes.memory.zero import min_gpus

    psi = psi or _bloomz_parameters()
    budget = int(gpu_memory_gib * 2**30)
    counts = tuple(min_gpus(psi, stage=s, budget_bytes=budget) for s in (2, 1))
    if None in counts:
        raise ValueError(f"no number of GPUs holds the model states in {gpu_memory_gib} GiB")
    return counts


def _memory_eight_bit(psi: int | None = None) -> float:
    """Chapter 1, exercise 2: model-state GB (10^9 bytes) with K = 6 on one GPU."""
    from fieldnotes.memory.zero import model_states

    return model_states(psi or _bloomz_parameters(), stage=0, n_gpus=1, k=6).total / 1e9


def _memory_lora_batch(gpu_memory_gib: float = 40.0, seq_len: int = 512, lora_rank: int = 16) -> int:
    """Chapter 1, exercise 4: the largest micro-batch at which BLOOMZ-7b1 with LoRA, without
    checkpointing, fits the GPU less the chapter's headroom (its attempts table, computed)."""
    from fieldnotes.memory.story import lora_exercise_micro_batch

    return lora_exercise_micro_batch(gpu_memory_gib, seq_len, lora_rank)


def _vlm_closed_scoring(right: int = 80, wrong_yes_no: int = 15, wrong_other: int = 5) -> tuple[float, float]:
    """Chapter 2, exercise 5: closed accuracy counting every question and by LLaVA-Med's rule."""
    from fieldnotes.vlm.exercises import exercise5_expected

    return exercise5_expected(right, wrong_yes_no, wrong_other)


def _trips_neighbours(width_over_r: float = 0.5) -> int:
    """Chapter 3, exercise 1: cells in the neighbourhood when cells are ``width_over_r`` · r wide.

    A partner just under r away can be ceil(r / w) cells off in each direction.
    """
    if not width_over_r > 0:
        raise ValueError(f"width_over_r must be positive, got {width_over_r!r}")
    reach = math.ceil(1 / width_over_r - 1e-12)
    return (2 * reach + 1) ** 2


def _shop_ndcg() -> float:
    """Chapter 5, exercise 1: nDCG@10 of (substitute, exact) with one E, one S and one C in stock."""
    from fieldnotes.shop.evaluate import ndcg_at_k

    return ndcg_at_k(["s", "e"], {"e": "E", "s": "S", "c": "C"})


EXERCISES = {
    (ex.chapter, ex.number): ex
    for ex in (
        Exercise(
            "01-memory",
            1,
            "(GPUs for ZeRO-2, GPUs for ZeRO-1)",
            _memory_gpus,
            hint="The model states must fit in the GPU's GiB: ZeRO-2 holds 2Ψ + 14Ψ/N bytes.",
        ),
        Exercise(
            "01-memory",
            2,
            "the model states in GB (10^9 bytes)",
            _memory_eight_bit,
            tolerance=0.01,
            hint="(2 + 2 + K)Ψ with K = 6, in 10^9-byte GB.",
        ),
        Exercise(
            "01-memory",
            4,
            "the largest micro-batch (samples per GPU)",
            _memory_lora_batch,
            hint="Each sample adds every layer's saved activations (fewer with LoRA: frozen "
            "matrices keep no input for a weight gradient) and the logits' bytes to the model "
            "states, which LoRA shrinks to little more than the 16-bit weights; keep the "
            "chapter's headroom free.",
        ),
        Exercise(
            "02-medical-vlm",
            5,
            "(accuracy counting every question, accuracy by LLaVA-Med's rule)",
            _vlm_closed_scoring,
            hint="LLaVA-Med's rule drops a wrong yes/no answer from the denominator and counts any other wrong answer as 0.",
        ),
        Exercise(
            "03-return-trips",
            1,
            "the number of cells in the neighbourhood",
            _trips_neighbours,
            hint="Count how many cells a partner just under r away can be from its own cell.",
        ),
        Exercise(
            "05-hackathon-chatbot",
            1,
            "nDCG@10",
            _shop_ndcg,
            tolerance=0.002,
            hint="DCG divides each gain by log2(rank + 1); the ideal ranking puts E before S.",
        ),
    )
}


def check(chapter: str, exercise: int, answer, **context) -> Verdict:
    """Grade ``answer`` to ``exercise`` of ``chapter``; ``context`` holds the notebook's parameters."""
    ex = EXERCISES.get((chapter, exercise))
    if ex is None:
        known = sorted(EXERCISES)
        raise ValueError(f"no checkable exercise {exercise} in {chapter!r}; there are {known}")
    return grade(ex, answer, ex.solve(**context))
