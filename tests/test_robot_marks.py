"""Marks on the map, matched one to one to the nearest plant within a radius."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldnotes.robot.marks import MARK_RADIUS_M, match_marks, score_marks


def test_scores_by_hand():
    plants = np.array([[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]])
    labels = np.array([0, 0, 1])
    marks = np.array([[0.05, 0.02], [0.0, 0.55], [0.9, 1.0], [0.0, 0.1]])
    s = score_marks(marks, [0, 1, 1, 0], plants, labels)
    # mark 0 takes plant 0 (nearest pair first), mark 3 finds plant 0 taken and nothing else near
    assert (s.marks, s.plants, s.matched) == (4, 3, 2)
    assert s.mark_precision == pytest.approx(0.5) and s.mark_recall == pytest.approx(2 / 3)
    assert s.label_accuracy == pytest.approx(0.5)  # mark 1 says male, plant 1 is female
    assert s.radius_m == MARK_RADIUS_M and np.isnan(s.own_plant_rate)
    # a row's marks all shifted by one pitch still match, but none on its own plant
    shifted = score_marks(plants + [0, 0.5], labels, plants, labels, mark_plants=[0, 1, 2])
    assert shifted.matched == 2 and shifted.own_plant_rate == 0
    on_own = score_marks(plants + [0, 0.05], labels, plants, labels, mark_plants=[0, 1, 2])
    assert on_own.own_plant_rate == 1 and on_own.label_accuracy == 1


def test_no_marks_and_bad_input():
    s = score_marks(np.zeros((0, 2)), [], np.array([[0.0, 0.0]]), [1])
    assert s.matched == 0 and s.mark_recall == 0 and np.isnan(s.mark_precision)
    with pytest.raises(ValueError, match="radius_m"):
        match_marks(np.zeros((1, 2)), np.zeros((1, 2)), float("nan"))
    with pytest.raises(ValueError, match="finite"):
        match_marks(np.array([[np.nan, 0.0]]), np.zeros((1, 2)), 0.2)
    with pytest.raises(ValueError, match="mark_labels"):
        score_marks(np.zeros((2, 2)), [0], np.zeros((1, 2)), [0])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 0.12))
def test_marks_near_their_plants_all_match(seed, noise):
    """Marks within the radius of their own plant, plants 0.5 m apart: every mark matches its own."""
    rng = np.random.default_rng(seed)
    plants = np.stack([np.zeros(12), np.arange(12) * 0.5], axis=1)
    order = rng.permutation(12)
    angle = rng.uniform(0, 2 * np.pi, 12)
    marks = plants[order] + noise * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    assert np.array_equal(match_marks(marks, plants, MARK_RADIUS_M), order)


def test_label_accuracy_interval():
    """About a hundred marks: the label accuracy's 95 % interval is several points wide."""
    from fieldnotes.robot.marks import wilson_interval

    lo, hi = wilson_interval(107, 112)
    assert lo < 107 / 112 < hi and 0.05 < hi - lo < 0.1
    assert wilson_interval(50, 50)[1] == 1.0 and wilson_interval(50, 50)[0] > 0.9
    assert wilson_interval(0, 10)[0] == 0.0
    assert all(np.isnan(wilson_interval(0, 0)))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)
    plants = np.array([[0.0, 0.0], [0.0, 0.5]])
    s = score_marks(plants, [0, 1], plants, [0, 0])
    assert s.labels_correct == 1 and s.label_interval() == wilson_interval(1, 2)


def test_compare_words():
    from fieldnotes.robot.marks import compare_words

    assert compare_words(0.98, 0.94) == "above" and compare_words(0.9, 0.94) == "below"
    assert compare_words(0.94, 0.94) == "level with"
    with pytest.raises(ValueError, match="finite"):
        compare_words(float("nan"), 0.5)


def test_off_type_sentence():
    from fieldnotes.robot.marks import off_type_sentence

    assert "no off-type" in off_type_sentence(0, 0)
    assert off_type_sentence(4, 3) == "Of the 4 off-types, the robot's marks called 3 fertile."
    with pytest.raises(ValueError, match="called_fertile"):
        off_type_sentence(2, 3)


def test_plan_camera_labels_follow_the_plan_unless_the_camera_is_sure():
    from fieldnotes.robot.marks import plan_camera_labels

    lines = np.array([0, 0, 1])  # rows 0, 1 female, row 2 male
    lane = np.array([0, 0, 1, 2, 2])
    prob = np.array([0.95, 0.7, 0.1, 0.4, 0.02])
    assert list(plan_camera_labels(lane, prob, lines, 0.9)) == [1, 0, 0, 1, 0]
    assert list(plan_camera_labels(lane, prob, lines, 0.5)) == [1, 1, 0, 0, 0]  # = the camera
    assert list(plan_camera_labels(lane, prob, lines, 0.99)) == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="threshold"):
        plan_camera_labels(lane, prob, lines, 0.4)
    with pytest.raises(ValueError, match="mark_lane"):
        plan_camera_labels(np.array([3]), np.array([0.5]), lines, 0.9)
    with pytest.raises(ValueError, match="mark_prob"):
        plan_camera_labels(lane, prob[:2], lines, 0.9)


def test_score_labeller_counts_off_types_found_and_false_alarms():
    from fieldnotes.robot.marks import score_labeller

    truth = np.array([0, 0, 1, 1, 0])  # plant 2 an off-type in a female row, plant 3 a male
    off = np.array([False, False, True, False, False])
    labels = np.array([1, 0, 1, 0, 1])
    match = np.array([0, 1, 2, 3, -1])  # the last mark matched no plant: not scored
    s = score_labeller(labels, match, truth, off)
    assert s.label_accuracy == pytest.approx(0.5)
    assert (s.off_types_found, s.sterile_called_fertile, s.fertile_called_sterile) == (1, 1, 1)
    assert np.isnan(score_labeller(labels[:0], match[:0], truth, off).label_accuracy)
    with pytest.raises(ValueError, match="off_types"):
        score_labeller(labels, match, truth, off[:2])
