"""Blind baselines: answers computed without looking at the image.

* ``majority_answers``: for each question string, the answer most often given to it in the
  training set (ties broken alphabetically); a question never seen in training gets the most
  common training answer of its answer type ("closed" or "open").
* The other blind baseline, the same language model trained on the same VQA with zero image
  tokens, is ``pipeline.run_config`` with ``fusion="none"``.

A VLM that does not beat these has learned the questions, not the images.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from fieldnotes.vlm.text import VQAItem, normalize_answer


def _most_common(counts: Counter) -> str:
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def majority_answers(train_items: list[VQAItem], items: list[VQAItem]) -> list[str]:
    """The majority training answer to each of ``items``' question strings (see the module doc)."""
    if not train_items:
        raise ValueError("train_items is empty; the majority baseline needs training questions")
    by_question: dict[str, Counter] = defaultdict(Counter)
    by_type: dict[str, Counter] = defaultdict(Counter)
    for it in train_items:
        answer = normalize_answer(it.answer)
        by_question[it.question][answer] += 1
        by_type[it.answer_type][answer] += 1
    out = []
    for it in items:
        counts = by_question.get(it.question) or by_type.get(it.answer_type)
        if counts is None:
            raise ValueError(
                f"question {it.question!r} has answer type {it.answer_type!r}, which no training "
                "question has"
            )
        out.append(_most_common(counts))
    return out
