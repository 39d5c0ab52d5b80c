"""Metrics by hand-computed examples (LLaVA-Med's token F1 and recall, nltk's BLEU-1), bootstrap
intervals, the majority baseline; batched greedy decoding equals one-at-a-time decoding."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.vlm.baselines import majority_answers
from fieldnotes.vlm.evaluate import (
    answer_questions,
    bleu1,
    bootstrap_interval,
    prompt_text,
    token_f1,
    vqa_metrics,
)
from fieldnotes.vlm.fusion import FusionConfig
from fieldnotes.vlm.language import LanguageConfig, build_language_model, train_tokenizer
from fieldnotes.vlm.model import MedVLM
from fieldnotes.vlm.text import VQAItem


def _it(q, a, kind, qtype="presence", mod="ct", img=0):
    return VQAItem(img, q, a, kind, qtype, mod)


def test_every_question_counts_including_invalid_closed_answers():
    items = [_it("a?", "yes", "closed"), _it("b?", "no", "closed"), _it("c?", "yes", "closed", mod="mri"),
             _it("d?", "left lung", "open", "location"), _it("e?", "ct", "open", "modality")]  # fmt: skip
    preds = ["yes", "maybe", "Yes.", "left  lung", "mri"]
    m = vqa_metrics(items, preds)
    assert m["closed_accuracy"] == pytest.approx(2 / 3)  # "maybe" is wrong, not dropped
    assert m["open_exact_match"] == pytest.approx(1 / 2)
    assert m["overall_accuracy"] == pytest.approx(3 / 5)
    assert (m["n_closed"], m["n_open"], m["n_questions"]) == (3, 2, 5)
    assert (m["by_modality"]["ct/closed"]["accuracy"], m["by_modality"]["ct/closed"]["n"]) == (
        0.5,
        2,
    )
    loc = m["by_question_type"]["location/open"]
    assert (loc["accuracy"], loc["n"], loc["token_recall"], loc["f1"]) == (1.0, 1, 1.0, 1.0)
    # open: "left lung" right (recall 1, F1 1, BLEU-1 1); "mri" for "ct" shares nothing (0, 0, 0)
    assert m["open_token_recall"] == pytest.approx(0.5)
    assert m["open_f1"] == pytest.approx(0.5) and m["open_bleu1"] == pytest.approx(0.5)
    for name, (lo, hi) in m["interval_95"].items():
        assert lo <= m[name] <= hi, name
    with pytest.raises(ValueError, match="differ"):
        vqa_metrics(items, preds[:2])


def test_token_scores_match_llava_med_and_nltk_by_hand():
    # LLaVA-Med calculate_f1score: tp counts the prediction's copies of shared words
    assert token_f1("left lung", "left lung") == (1.0, 1.0, 1.0)
    f1, p, r = token_f1("left", "left lung")  # precision 1, recall 1/2
    assert (p, r) == (1.0, 0.5) and f1 == pytest.approx(2 / 3)
    f1, p, r = token_f1("left left ribs", "left lung")  # tp 2, fp 1, fn 1
    assert (p, r) == (2 / 3, 2 / 3) and f1 == pytest.approx(2 / 3)
    assert token_f1("", "left lung") == (0.0, 0.0, 0.0) and token_f1("mri", "ct") == (0.0, 0.0, 0.0)
    # nltk sentence_bleu(weights=(1, 0, 0, 0)): clipped unigram precision x brevity penalty
    assert bleu1("left lung", "left lung") == 1.0
    assert bleu1("left", "left lung") == pytest.approx(math.exp(1 - 2 / 1))
    assert bleu1("left left ribs", "left lung") == pytest.approx(1 / 3)  # clipped to 1 of 3, c > r
    assert bleu1("", "left lung") == 0.0 and bleu1("mri", "ct") == 0.0


words = st.lists(st.sampled_from(["left", "right", "lung", "ct", "no"]), max_size=4).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(words, words)
def test_token_scores_are_fractions_and_one_only_for_equal_word_sets(pred, truth):
    f1, p, r = token_f1(pred, truth)
    assert 0 <= f1 <= 1 and 0 <= p <= 1 and 0 <= r <= 1 and 0 <= bleu1(pred, truth) <= 1
    # LLaVA-Med counts a missing word only when it is absent from the prediction altogether, so
    # F1 is 1 exactly when both use the same set of words ("left" scores 1 against "left left")
    assert (f1 == 1.0) == (bool(pred) and set(pred.split()) == set(truth.split()))


def test_bootstrap_interval_is_deterministic_and_narrows_with_more_questions():
    rng = np.random.default_rng(0)
    small, large = rng.random(50) < 0.7, rng.random(5000) < 0.7
    a, b = bootstrap_interval(small, seed=3), bootstrap_interval(small, seed=3)
    assert a == b and a[0] < small.mean() < a[1]
    lo, hi = bootstrap_interval(large, seed=3)
    assert hi - lo < (a[1] - a[0]) / 4  # width ~ 1/sqrt(n): 10x the questions, ~1/3 the width
    # the 95 % interval of a proportion: about +-1.96 sqrt(p(1-p)/n)
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.7 * 0.3 / 5000), rel=0.15)
    assert all(math.isnan(v) for v in bootstrap_interval([], seed=0))
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval(small, level=1.5)


def test_majority_answer_per_question_string_with_a_fallback_per_answer_type():
    train = [_it("is there a nodule?", "no", "closed"), _it("is there a nodule?", "no", "closed"),
             _it("is there a nodule?", "yes", "closed"), _it("what modality is this?", "ct", "open", "modality"),
             _it("what modality is this?", "mri", "open", "modality"), _it("is this normal?", "yes", "closed")]  # fmt: skip
    items = [_it("is there a nodule?", "yes", "closed"), _it("what modality is this?", "ct", "open"),
             _it("is a fracture present?", "no", "closed"), _it("which side?", "left", "open")]  # fmt: skip
    # tie ct/mri broken alphabetically; unseen questions get their answer type's majority
    assert majority_answers(train, items) == ["no", "ct", "no", "ct"]
    with pytest.raises(ValueError, match="train_items is empty"):
        majority_answers([], items)


@pytest.mark.parametrize("kind", ["xattn", "qformer", "linear"])
def test_batched_answers_equal_single_answers(kind):
    torch.manual_seed(0)
    questions = [
        "is there a nodule?",
        "what modality is this?",
        "is this a ct scan?",
        "where is the lesion located?",
    ]
    tok = train_tokenizer([prompt_text(q) + " yes no ct mri left lung" for q in questions])
    lm = build_language_model(len(tok), LanguageConfig(hidden=16, layers=2, heads=2))
    model = MedVLM(
        lm, FusionConfig(kind=kind, num_queries=3, qformer_hidden=16, heads=2), d_vision=8
    )
    if kind == "xattn":
        with torch.no_grad():
            for b in model.fusion:
                b.gate_attn.fill_(1.0)
    feats = torch.randn(5, 6, 8)
    items = [_it(q, "yes", "closed", img=i % 5) for i, q in enumerate(questions * 3)]
    batched = answer_questions(model, tok, feats, items, max_new_tokens=3)
    single = [answer_questions(model, tok, feats, [it], max_new_tokens=3)[0] for it in items]
    assert batched == single


def test_llava_med_closed_rule_drops_wrong_yes_no_answers_from_the_denominator():
    from fieldnotes.vlm.evaluate import closed_accuracies, llava_med_closed_scores

    preds = ["yes", "no", "Yes.", "left lung", "no, it is not"]
    truths = ["yes", "yes", "yes", "no", "no"]
    # right, wrong yes/no (left out), right, neither word (0), contains the truth (1)
    assert llava_med_closed_scores(preds, truths) == [1.0, 1.0, 0.0, 1.0]
    every, llava = closed_accuracies(preds, truths)
    assert every == pytest.approx(2 / 5) and llava == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="differ in length"):
        llava_med_closed_scores(["yes"], [])


def test_exercise5_check_accepts_the_solution_and_rejects_a_plausible_wrong_answer():
    from fieldnotes.exercises import RIGHT, WRONG, Exercise, grade
    from fieldnotes.vlm.exercises import exercise5_answers, exercise5_expected

    preds, truths = exercise5_answers()
    assert len(preds) == 100 and sum(p == t for p, t in zip(preds, truths, strict=True)) == 80
    expected = exercise5_expected()
    assert expected == pytest.approx((80 / 100, 80 / 85))
    assert exercise5_expected(10, 0, 10) == pytest.approx(
        (0.5, 0.5)
    )  # no yes/no mistakes: both rules agree
    ex = Exercise("02-medical-vlm", 5, "(every question, LLaVA-Med's rule)", exercise5_expected)
    assert grade(ex, (0.8, 80 / 85), ex.solve()).grade == RIGHT
    assert grade(ex, (0.8, 0.8), ex.solve()).grade == WRONG  # the rule ignored
    assert (
        grade(ex, (0.8, 95 / 100), ex.solve()).grade != RIGHT
    )  # wrong yes/no answers counted as right
    with pytest.raises(ValueError, match="counts"):
        exercise5_answers(-1, 0, 0)
