"""Captions and VQA items agree with the ground truth they were generated from."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.vlm.data import make_scans
from fieldnotes.vlm.text import canonical_caption, caption, make_vqa, normalize_answer, questions


@given(seed=st.integers(0, 10**6))
@settings(max_examples=20, deadline=None)
def test_answers_match_ground_truth(seed):
    scans = make_scans(6, seed)
    items = make_vqa(scans, seed, per_image=5)
    for it in items:
        s = scans[it.image]
        q = it.question
        if it.question_type == "modality" and it.answer_type == "open":
            assert it.answer == s.modality
        if it.question_type == "normal":
            assert it.answer == ("no" if s.abnormal else "yes")
        if it.question_type == "presence":
            assert (it.answer == "yes") == (s.abnormal and s.finding in q.replace("pleural ", ""))
        if it.question_type == "location":
            assert it.answer == s.location
        if it.question_type == "finding":
            assert it.answer == (s.finding if s.abnormal else "none")
        if it.question_type == "size":
            assert it.answer == s.size
        assert it.answer_type == ("closed" if it.answer in ("yes", "no") else "open")
        assert normalize_answer(it.answer) == it.answer


def test_closed_and_open_mixed_and_wording_varies():
    scans = make_scans(100, 4)
    items = make_vqa(scans, 4, per_image=4)
    kinds = {it.answer_type for it in items}
    assert kinds == {"closed", "open"}
    closed = [it for it in items if it.answer_type == "closed"]
    yes = np.mean([it.answer == "yes" for it in closed])
    assert 0.3 < yes < 0.7  # balanced enough that "always yes" cannot pass
    assert len({it.question for it in items if it.question_type == "modality"}) >= 4


def test_caption_mentions_the_finding_and_canonical_is_wording_free():
    rng = np.random.default_rng(0)
    for s in make_scans(30, 9):
        c = caption(s, rng)
        if s.abnormal:
            assert s.location in c
        assert canonical_caption(s) == canonical_caption(s)
    assert len(questions(make_scans(1, 0)[0], 0, rng, per_image=2)) == 2


def test_normalize_answer():
    assert normalize_answer("  Left Lung. ") == "left lung"


@pytest.mark.parametrize("per_image", [0, -1, 2.5, float("nan"), True])
def test_bad_questions_per_image_is_refused_naming_it(per_image):
    with pytest.raises(ValueError, match="per_image"):
        make_vqa(make_scans(2, 0), 0, per_image=per_image)
