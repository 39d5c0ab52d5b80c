"""Evaluation by our own code: greedy answers, then the scores medical VQA papers report, each with
a 95 % bootstrap interval over questions.

* **closed accuracy**: the normalised answer equals "yes"/"no" as given. Every question counts;
  LLaVA-Med's ``run_eval.py`` instead appends nothing for a closed answer that contains "yes" or
  "no" but not the truth (it leaves the denominator), and 0 for one with neither word.
* **open exact match**: the normalised answer equals the normalised truth.
* **open token recall, F1, BLEU-1**: as LLaVA-Med's ``calculate_f1score`` and nltk's
  ``sentence_bleu(weights=(1, 0, 0, 0))`` compute them over the whitespace tokens of the
  normalised answers (``text.normalize_answer``; LLaVA-Med's own ``normalize_word`` glossary of
  contractions and number words is not reproduced). LLaVA-Med's headline "open" number is the
  recall: the share of the truth's tokens that appear in the answer.

Intervals are percentile bootstrap intervals (questions resampled with replacement, 1,000 times,
from ``derive_seed(seed, "bootstrap")``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from fieldnotes.vlm.seeds import derive_seed
from fieldnotes.vlm.text import VQAItem, normalize_answer

#: Coverage of every interval ``vqa_metrics`` reports.
INTERVAL_LEVEL = 0.95


def prompt_text(question: str) -> str:
    """The prompt the model sees before it answers."""
    return f"question : {question} answer :"


def answer_questions(
    model, tokenizer, features, items: list[VQAItem], max_new_tokens: int = 4, batch_size: int = 256
) -> list[str]:
    """Greedy answers to ``items``; ``features[i]`` are the image tokens of image i (ignored by the
    question-only model). Prompts of equal length are batched together, so no padding enters the
    computation; prompts and image tokens are moved to the model's device."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    prompts = [tokenizer.encode(prompt_text(it.question), add_special_tokens=False) for it in items]
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_len[len(p)].append(i)
    answers: list[str] = [""] * len(items)
    for _, idx in sorted(by_len.items()):
        for s in range(0, len(idx), batch_size):
            chunk = idx[s : s + batch_size]
            ids = torch.tensor([prompts[i] for i in chunk], device=device)
            feats = features[torch.tensor([items[i].image for i in chunk])].to(device)
            new = model.generate(
                ids, features=feats, max_new_tokens=max_new_tokens, eos_id=tokenizer.eos_token_id
            )
            for i, toks in zip(chunk, new, strict=True):
                answers[i] = normalize_answer(tokenizer.decode(toks, skip_special_tokens=True))
    model.train()
    return answers


def token_f1(prediction: str, reference: str) -> tuple[float, float, float]:
    """(F1, precision, recall) over whitespace tokens exactly as LLaVA-Med's ``calculate_f1score``:
    true positives count the prediction's copies of shared tokens; all 0 when either is empty or
    nothing is shared."""
    cand, ref = Counter(prediction.split()), Counter(reference.split())
    if not cand or not ref:
        return 0.0, 0.0, 0.0
    tp = sum(c for w, c in cand.items() if w in ref)
    fp = sum(c for w, c in cand.items() if w not in ref)
    fn = sum(c for w, c in ref.items() if w not in cand)
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall), precision, recall


def bleu1(prediction: str, reference: str) -> float:
    """Sentence BLEU-1 with one reference as nltk computes it: clipped unigram precision times the
    brevity penalty exp(1 - r / c) when the prediction (c tokens) is not longer than the truth (r)."""
    cand, ref = prediction.split(), reference.split()
    if not cand:
        return 0.0
    counts, ref_counts = Counter(cand), Counter(ref)
    clipped = sum(min(c, ref_counts[w]) for w, c in counts.items())
    if clipped == 0:
        return 0.0
    c, r = len(cand), len(ref)
    penalty = 1.0 if c > r else math.exp(1 - r / c)
    return penalty * clipped / c


def bootstrap_interval(values, seed: int = 0, n_boot: int = 1000, level: float = INTERVAL_LEVEL):
    """Percentile bootstrap interval (lo, hi) of the mean of ``values``; (nan, nan) when empty."""
    v = np.asarray(values, dtype=float)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(derive_seed(seed, "bootstrap"))
    means = v[rng.integers(0, v.size, (n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _group(scores: dict[str, np.ndarray], mask: np.ndarray, open_: bool, seed: int) -> dict:
    """Accuracy (exact) with its interval, and for open questions LLaVA-Med's token scores."""
    right = scores["right"][mask]
    out = {"accuracy": _mean(right), "n": int(mask.sum()),
           "interval_95": list(bootstrap_interval(right, seed))}  # fmt: skip
    if open_:
        for name in ("token_recall", "f1", "bleu1"):
            out[name] = _mean(scores[name][mask])
    return out


def vqa_metrics(items: list[VQAItem], predictions: list[str], seed: int = 0) -> dict:
    """Closed accuracy, open exact match, overall, LLaVA-Med's open token recall / F1 / BLEU-1, each
    with a 95 % bootstrap interval, and accuracy per question type and per modality (fractions)."""
    if len(items) != len(predictions):
        raise ValueError(
            f"items ({len(items)}) and predictions ({len(predictions)}) differ in length"
        )
    if not items:
        raise ValueError("items is empty; nothing to evaluate")
    truth = [normalize_answer(it.answer) for it in items]
    pred = [normalize_answer(p) for p in predictions]
    token = [token_f1(p, t) for p, t in zip(pred, truth, strict=True)]
    scores = {
        "right": np.array([p == t for p, t in zip(pred, truth, strict=True)], dtype=float),
        "token_recall": np.array([r for _, _, r in token]),
        "f1": np.array([f for f, _, _ in token]),
        "bleu1": np.array([bleu1(p, t) for p, t in zip(pred, truth, strict=True)]),
    }
    closed = np.array([it.answer_type == "closed" for it in items])
    parts = {
        "closed_accuracy": scores["right"][closed],
        "open_exact_match": scores["right"][~closed],
        "overall_accuracy": scores["right"],
        "open_token_recall": scores["token_recall"][~closed],
        "open_f1": scores["f1"][~closed],
        "open_bleu1": scores["bleu1"][~closed],
    }
    out: dict = {
        "n_questions": len(items),
        "n_closed": int(closed.sum()),
        "n_open": int((~closed).sum()),
    }
    out |= {name: _mean(values) for name, values in parts.items()}
    out["interval_95"] = {name: list(bootstrap_interval(v, seed)) for name, v in parts.items()}
    out["by_question_type"], out["by_modality"] = {}, {}
    for key, attr in (("by_question_type", "question_type"), ("by_modality", "modality")):
        for value in sorted({getattr(it, attr) for it in items}):
            for kind in ("closed", "open"):
                m = np.array(
                    [getattr(it, attr) == value and it.answer_type == kind for it in items]
                )
                if m.any():
                    out[key][f"{value}/{kind}"] = _group(scores, m, kind == "open", seed)
    return out


def llava_med_closed_scores(predictions: list[str], truths: list[str]) -> list[float]:
    """Per closed question the score LLaVA-Med's ``run_eval.py`` appends, as this chapter reads it
    (see the module docstring): an answer containing "yes" or "no" (substring tests on the
    normalised strings, as there) scores 1.0 when it contains the truth and is left out (no entry)
    when it does not; an answer with neither word scores 0.0. Their mean is its closed accuracy."""
    if len(predictions) != len(truths):
        raise ValueError(
            f"predictions ({len(predictions)}) and truths ({len(truths)}) differ in length"
        )
    scores = []
    for p, t in zip(predictions, truths, strict=True):
        p, t = normalize_answer(p), normalize_answer(t)
        if "yes" in p or "no" in p:
            if t in p:
                scores.append(1.0)
        else:
            scores.append(0.0)
    return scores


def closed_accuracies(predictions: list[str], truths: list[str]) -> tuple[float, float]:
    """(closed accuracy counting every question, as this chapter scores it; closed accuracy by
    LLaVA-Med's rule, ``llava_med_closed_scores``), fractions; nan where nothing is counted."""
    if not predictions:
        raise ValueError("predictions is empty; nothing to score")
    every = [
        float(normalize_answer(p) == normalize_answer(t))
        for p, t in zip(predictions, truths, strict=True)
    ]
    return _mean(every), _mean(llava_med_closed_scores(predictions, truths))
