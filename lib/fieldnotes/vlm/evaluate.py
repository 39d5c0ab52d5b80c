"""Evaluation by our own code: greedy answers, then closed accuracy and open exact match.

Every question counts. (LLaVA-Med's published script drops wrong closed answers from the
denominator; here a closed answer that is neither right nor "yes"/"no" is simply wrong.)
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from fieldnotes.vlm.text import VQAItem, normalize_answer


def prompt_text(question: str) -> str:
    """The prompt the model sees before it answers."""
    return f"question : {question} answer :"


def answer_questions(
    model, tokenizer, features, items: list[VQAItem], max_new_tokens: int = 4, batch_size: int = 256
) -> list[str]:
    """Greedy answers to ``items``; ``features[i]`` are the image tokens of image i. Prompts of equal
    length are batched together, so no padding enters the computation."""
    import torch

    model.eval()
    prompts = [tokenizer.encode(prompt_text(it.question), add_special_tokens=False) for it in items]
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_len[len(p)].append(i)
    answers: list[str] = [""] * len(items)
    for _, idx in sorted(by_len.items()):
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            ids = torch.tensor([prompts[i] for i in chunk])
            feats = features[torch.tensor([items[i].image for i in chunk])]
            new = model.generate(
                ids, features=feats, max_new_tokens=max_new_tokens, eos_id=tokenizer.eos_token_id
            )
            for i, toks in zip(chunk, new, strict=True):
                answers[i] = normalize_answer(tokenizer.decode(toks, skip_special_tokens=True))
    model.train()
    return answers


def vqa_metrics(items: list[VQAItem], predictions: list[str]) -> dict:
    """Closed accuracy, open exact match, overall, and both per question type and per modality."""
    if len(items) != len(predictions):
        raise ValueError(
            f"items ({len(items)}) and predictions ({len(predictions)}) differ in length"
        )
    if not items:
        raise ValueError("items is empty; nothing to evaluate")
    right = np.array(
        [
            normalize_answer(p) == normalize_answer(it.answer)
            for it, p in zip(items, predictions, strict=True)
        ]
    )
    closed = np.array([it.answer_type == "closed" for it in items])

    def frac(mask):
        return float(right[mask].mean()) if mask.any() else float("nan")

    out = {
        "n_questions": len(items),
        "n_closed": int(closed.sum()),
        "n_open": int((~closed).sum()),
        "closed_accuracy": frac(closed),
        "open_exact_match": frac(~closed),
        "overall_accuracy": float(right.mean()),
        "by_question_type": {},
        "by_modality": {},
    }
    for key, attr in (("by_question_type", "question_type"), ("by_modality", "modality")):
        for value in sorted({getattr(it, attr) for it in items}):
            for kind in ("closed", "open"):
                m = np.array(
                    [getattr(it, attr) == value and it.answer_type == kind for it in items]
                )
                if m.any():
                    out[key][f"{value}/{kind}"] = {"accuracy": frac(m), "n": int(m.sum())}
    return out
