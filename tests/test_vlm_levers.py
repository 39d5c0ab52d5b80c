"""Which part is the larger lever: the verdict follows the per-question records, its intervals cover
the truth, and it refuses to name a lever the grid cannot separate."""

import itertools

import numpy as np
import pytest

from fieldnotes.vlm.levers import (
    ENCODER,
    LM,
    NEITHER,
    agreement,
    check_finding,
    lever_findings,
    lever_table,
)

PAIRS = [(e, m) for e in ("general", "medical") for m in ("general", "medical")]


def records(p, budgets=(10, 20), seeds=1, fusions=("qformer",), q=800, seed=0):
    """Per-question 1/0 records drawn with success probability ``p(encoder, lm, steps)``."""
    rng = np.random.default_rng(seed)
    return {(e, m, f, s, b): (rng.random(q) < p(e, m, b)).astype(float)
            for (e, m), f, s, b in itertools.product(PAIRS, fusions, range(seeds), budgets)}  # fmt: skip


def encoder_later(e, m, b):
    """The LM leads at 10 steps (+20 vs +2 points), the encoder at 20 (+25 vs +5)."""
    if b == 10:
        return 0.5 + 0.02 * (e == "medical") + 0.20 * (m == "medical")
    return 0.5 + 0.25 * (e == "medical") + 0.05 * (m == "medical")


def test_the_verdict_follows_the_records_and_flips_with_the_budget():
    t = lever_table(records(encoder_later))
    assert list(t["steps"]) == [10, 20]
    assert list(t["larger lever"]) == [LM, ENCODER]
    first, last = t.iloc[0], t.iloc[1]
    assert first["LM effect"] == pytest.approx(20, abs=4) and last[
        "encoder effect"
    ] == pytest.approx(25, abs=4)
    for _, r in t.iterrows():
        for name in ("encoder", "LM", "difference"):
            assert r[f"{name} lo"] <= r[f"{name} effect"] <= r[f"{name} hi"]
    words = lever_findings(t)
    assert words["lever_final"] == ENCODER
    assert (
        words["lever_changes"]
        == f"changes with the budget: {LM} after 10 steps, {ENCODER} after 20 steps"
    )
    assert words["lever_intervals"].startswith("over questions only (one pre-training seed")
    assert "the encoder's effect grew from" in words["lever_trend"]


def test_check_budget_says_whether_the_final_verdict_holds():
    t = lever_table(records(encoder_later))  # LM leads at 10 steps, the encoder at 20
    flipped = check_finding(t, 10, 20)
    assert flipped["lever_check_holds"] == "does not hold"
    assert flipped["lever_check"].startswith("Trained on to 20 steps, beyond the final model's 10")
    assert f"the larger lever there is {ENCODER}" in flipped["lever_check"]
    steady = lever_table(records(encoder_later, budgets=(20, 30)))
    assert check_finding(steady, 20, 30)["lever_check_holds"] == "holds"
    unmeasured = check_finding(t, 20, None, 800)
    assert unmeasured["lever_check_holds"] == "was not measured"
    assert "800 steps" in unmeasured["lever_check"]
    with pytest.raises(ValueError, match="final_steps"):
        check_finding(t, 15, None)
    with pytest.raises(ValueError, match="check_steps"):
        check_finding(t, 20, 10)
    with pytest.raises(ValueError, match="check_steps"):
        check_finding(t, 10, 30)


def test_equal_levers_are_not_separated():
    t = lever_table(
        records(lambda e, m, b: 0.5 + 0.1 * (e == "medical") + 0.1 * (m == "medical"), budgets=(5,))
    )
    assert list(t["larger lever"]) == [NEITHER]
    assert t["difference lo"].iloc[0] <= 0 <= t["difference hi"].iloc[0]
    assert lever_findings(t)["lever_changes"] == f"is the same at every budget scored: {NEITHER}"


def test_seeds_widen_the_interval_and_are_named():
    def p(e, m, b):
        return 0.5 + 0.1 * (m == "medical")

    one = lever_table(records(p, budgets=(5,), q=400))
    # two seeds whose encoder effects disagree (+12 and -12 points): the seed spread enters the interval
    recs = records(p, budgets=(5,), seeds=2, q=400)
    for m in ("general", "medical"):
        recs[("medical", m, "qformer", 0, 5)] = np.clip(
            recs[("general", m, "qformer", 0, 5)] + (np.arange(400) % 8 == 0), 0, 1
        )
        recs[("medical", m, "qformer", 1, 5)] = recs[("general", m, "qformer", 1, 5)] * (
            np.arange(400) % 8 != 0
        )
    two = lever_table(recs)
    width = lambda t: float(t["encoder hi"].iloc[0] - t["encoder lo"].iloc[0])  # noqa: E731
    assert width(two) > 1.5 * width(one)
    assert int(two["seeds"].iloc[0]) == 2
    assert lever_findings(two)["lever_intervals"] == "over questions and over 2 pre-training seeds"


def test_only_cells_trained_at_every_seed_enter_and_bad_input_is_named():
    recs = records(encoder_later, fusions=("qformer", "linear"), seeds=2)
    for key in [k for k in recs if k[2] == "linear" and k[3] == 1]:
        del recs[key]  # linear was trained at seed 0 only
    assert set(lever_table(recs)["fusions"]) == {"qformer"}
    with pytest.raises(ValueError, match="cannot be compared"):
        lever_table({k: v for k, v in recs.items() if k[1] == "medical"})
    with pytest.raises(ValueError, match="empty"):
        lever_table({})
    recs[("general", "general", "qformer", 0, 10)] = np.ones(3)
    with pytest.raises(ValueError, match="same questions"):
        lever_table(recs)
    with pytest.raises(ValueError, match="n_boot"):
        lever_table(records(encoder_later), n_boot=0)
    assert agreement(ENCODER, ENCODER) == "agrees" and agreement(ENCODER, LM) == "disagrees"


def test_cell_intervals_cover_each_cell_and_widen_with_disagreeing_seeds():
    from fieldnotes.vlm.levers import cell_intervals

    recs = records(encoder_later, seeds=2, q=400)
    t = cell_intervals(recs)
    assert len(t) == 4 * 2 and set(t["seeds"]) == {2}
    assert ((t["lo"] <= t["overall accuracy"]) & (t["overall accuracy"] <= t["hi"])).all()
    row = t[
        (t["encoder"] == "medical") & (t["language model"] == "general") & (t["steps"] == 20)
    ].iloc[0]
    key0, key1 = ("medical", "general", "qformer", 0, 20), ("medical", "general", "qformer", 1, 20)
    assert row["overall accuracy"] == pytest.approx((recs[key0].mean() + recs[key1].mean()) / 2)
    narrow = row["hi"] - row["lo"]
    recs[key1] = np.zeros(400)  # the second seed learned nothing: the interval must grow
    wide = cell_intervals(recs)
    row = wide[
        (wide["encoder"] == "medical")
        & (wide["language model"] == "general")
        & (wide["steps"] == 20)
    ].iloc[0]
    assert row["hi"] - row["lo"] > 3 * narrow
    with pytest.raises(ValueError, match="empty"):
        cell_intervals({})
