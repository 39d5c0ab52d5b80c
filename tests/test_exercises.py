"""fieldnotes.exercises: every check accepts its own solution and rejects a plausible wrong one."""

import pytest
from conftest import ROOT

from fieldnotes import exercises
from fieldnotes.exercises import CLOSE, RIGHT, UNANSWERED, WRONG, Exercise, check, grade

PSI = 7_069_016_064  # BLOOMZ-7b1's parameter count, as chapter 1 counts it (saves building it)
CONTEXT = {("01-memory", 1): {"psi": PSI}, ("01-memory", 2): {"psi": PSI}}


def solution(key):
    ex = exercises.EXERCISES[key]
    return ex.solve(**CONTEXT.get(key, {}))


def plausible_wrong(expected):
    """A wrong answer a learner might give: an integer two off, a number 50 % high."""
    if isinstance(expected, tuple):
        return (plausible_wrong(expected[0]), *expected[1:])
    return expected + 2 if isinstance(expected, int) else expected * 1.5


@pytest.mark.parametrize("key", sorted(exercises.EXERCISES))
def test_each_check_accepts_its_solution_and_rejects_a_wrong_answer(key):
    expected = solution(key)
    context = CONTEXT.get(key, {})
    assert check(*key, expected, **context).grade == RIGHT
    assert check(*key, plausible_wrong(expected), **context).grade == WRONG


def test_the_solutions_are_the_chapters_figures():
    budget = 40 * 2**30  # ZeRO-2 holds 2Ψ + 14Ψ/N bytes, ZeRO-1 4Ψ + 12Ψ/N (the paper's K = 12)
    fewest = [
        next(n for n in range(1, 99) if a * PSI + b * PSI / n <= budget)
        for a, b in [(2, 14), (4, 12)]
    ]
    assert solution(("01-memory", 1)) == tuple(fewest) == (4, 6)
    assert solution(("01-memory", 2)) == pytest.approx(10 * PSI / 1e9)
    from fieldnotes.memory.story import lora_exercise_micro_batch

    assert solution(("01-memory", 4)) == lora_exercise_micro_batch() >= 1
    assert check("01-memory", 4, solution(("01-memory", 4)), gpu_memory_gib=80.0).grade == WRONG
    assert solution(("03-return-trips", 1)) == 25  # 5 x 5 cells at width r / 2
    assert exercises._trips_neighbours(1.0) == 9 and exercises._trips_neighbours(1 / 3) == 49
    assert 0 < solution(("05-hackathon-chatbot", 1)) < 1


def test_the_answer_follows_the_notebooks_parameters():
    at_80 = check("01-memory", 1, (4, 7), psi=PSI, gpu_memory_gib=80.0)
    assert at_80.grade == WRONG and "off" in at_80.message
    assert (
        check("01-memory", 1, solution(("01-memory", 1)), psi=PSI, gpu_memory_gib=40.0).grade
        == RIGHT
    )


def test_grades_close_unanswered_and_sets():
    ex = Exercise("x", 1, "the value", lambda: 0, tolerance=0.01, close=0.1, hint="Think.")
    assert grade(ex, 1.05, 1.0).grade == CLOSE and "Think." in grade(ex, 1.05, 1.0).message
    assert grade(ex, 1.004, 1.0).grade == RIGHT
    assert grade(ex, 3, 4).grade == CLOSE  # an integer one away
    assert grade(ex, None, 1.0).grade == UNANSWERED
    assert grade(ex, (None, 2), (1, 2)).grade == UNANSWERED
    assert grade(ex, {"a", "b"}, {"a", "b"}).grade == RIGHT
    near = grade(ex, {"a"}, {"a", "b"})
    assert near.grade == CLOSE and "missing ['b']" in near.message
    assert grade(ex, {"c", "d"}, {"a", "b"}).grade == WRONG
    assert repr(near).startswith("close: ")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("four", "must be a number"),
        (float("nan"), "finite"),
        (True, "must be a number"),
        ((1, 2, 3), "1 value"),
    ],
)
def test_bad_answers_are_clear_errors(answer, error):
    with pytest.raises(ValueError, match=error):
        check("05-hackathon-chatbot", 1, answer)


def test_an_unknown_exercise_names_the_known_ones():
    with pytest.raises(
        ValueError, match=r"no checkable exercise 9 in '01-memory'.*03-return-trips"
    ):
        check("01-memory", 9, 1)
    with pytest.raises(ValueError, match="no number of GPUs"):
        check("01-memory", 1, (1, 1), psi=PSI, gpu_memory_gib=1.0)


@pytest.mark.parametrize("key", sorted(exercises.EXERCISES))
def test_each_checkable_exercise_has_a_check_cell_in_its_chapter(key):
    import nbformat

    from fieldnotes import runner

    chapter, number = key
    nb = nbformat.read(runner.notebook_path(ROOT, chapter), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f'exercises.check("{chapter}", {number},' in code
