"""Which part is the larger lever: the verdict follows the per-question records, its intervals cover
the truth, and it refuses to name a lever the grid cannot separate."""

import itertools

import numpy as np
import pytest

from fieldnotes.vlm.levers import (
    ENCODER,
    LM,
    NEITHER,
    NO_IMAGE,
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


def no_image(recs, p=0.3, seed=1):
    """No-image LM records (LM, seed, steps) for ``records``: each LM right with probability ``p``,
    well below every cell, so the cells beat them."""
    rng = np.random.default_rng(seed)
    q = len(next(iter(recs.values())))
    return {
        (m, k[3], k[4]): (rng.random(q) < p).astype(float)
        for k in recs
        for m in ("general", "medical")
    }


def table(recs, blind=None, **kw):
    return lever_table(recs, no_image(recs) if blind is None else blind, **kw)


def encoder_later(e, m, b):
    """The LM leads at 10 steps (+20 vs +2 points), the encoder at 20 (+25 vs +5)."""
    if b == 10:
        return 0.5 + 0.02 * (e == "medical") + 0.20 * (m == "medical")
    return 0.5 + 0.25 * (e == "medical") + 0.05 * (m == "medical")


def test_the_verdict_follows_the_records_and_flips_with_the_budget():
    t = table(records(encoder_later))
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
    t = table(records(encoder_later))  # LM leads at 10 steps, the encoder at 20
    flipped = check_finding(t, 10, 20)
    assert flipped["lever_check_holds"] == "does not hold"
    assert flipped["lever_check"].startswith("Trained on to 20 steps, beyond the final model's 10")
    assert f"the larger lever there is {ENCODER}" in flipped["lever_check"]
    steady = table(records(encoder_later, budgets=(20, 30)))
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
    t = table(
        records(lambda e, m, b: 0.5 + 0.1 * (e == "medical") + 0.1 * (m == "medical"), budgets=(5,))
    )
    assert list(t["larger lever"]) == [NEITHER]
    assert t["difference lo"].iloc[0] <= 0 <= t["difference hi"].iloc[0]
    assert lever_findings(t)["lever_changes"] == f"is the same at every budget scored: {NEITHER}"


def test_seeds_are_kept_apart_and_their_signs_compared():
    """Two pre-training seeds are too few to resample: each seed's effect is reported and whether
    the signs agree; the interval is over questions with the seeds fixed."""

    def p(e, m, b):
        return 0.5 + 0.1 * (m == "medical")

    # two seeds whose encoder effects disagree (+12.5 and -12.5 points)
    recs = records(p, budgets=(5,), seeds=2, q=400)
    for m in ("general", "medical"):
        recs[("medical", m, "qformer", 0, 5)] = np.clip(
            recs[("general", m, "qformer", 0, 5)] + (np.arange(400) % 8 == 0), 0, 1
        )
        recs[("medical", m, "qformer", 1, 5)] = recs[("general", m, "qformer", 1, 5)] * (
            np.arange(400) % 8 != 0
        )
    two = table(recs)
    row = two.iloc[0]
    assert int(row["seeds"]) == 2 and not row["encoder signs agree"]
    first, second = (float(v) for v in row["encoder by seed"].split(", "))
    assert first > 5 and second < -5
    assert row["encoder effect"] == pytest.approx((first + second) / 2, abs=0.06)
    words = lever_findings(two)["lever_intervals"]
    assert words.startswith("over questions, with the 2 pre-training seeds kept apart")
    assert f"encoder's effect per seed is {row['encoder by seed']} points" in words
    same = table(records(encoder_later, seeds=2, q=400)).iloc[-1]
    assert same["encoder signs agree"] and same["difference signs agree"]


def test_identical_answers_whatever_the_encoder_name_no_lever():
    """The first edition's defect: every cell answers exactly as its own no-image LM (the image
    path is dead) and the medical LM's question priors are better. Without subtracting the
    no-image LM this read as an LM effect of about +20 points; now no lever is named."""
    rng = np.random.default_rng(3)
    q, budgets = 600, (10, 20)
    blind = {(m, 0, b): (rng.random(q) < (0.6 if m == "medical" else 0.4)).astype(float)
             for m in ("general", "medical") for b in budgets}  # fmt: skip
    recs = {(e, m, "qformer", 0, b): blind[(m, 0, b)].copy() for e, m in PAIRS for b in budgets}
    t = lever_table(recs, blind)
    assert list(t["larger lever"]) == [NO_IMAGE, NO_IMAGE]
    assert list(t["cells above blind"]) == [0, 0]
    assert (t["LM effect"] == 0).all() and (t["encoder effect"] == 0).all()
    words = lever_findings(t)
    assert words["lever_final"] == NO_IMAGE
    assert words["lever_image_use"].startswith("At no budget scored does any of the 4 cells beat")
    assert agreement(words["lever_final"], LM) == "cannot be compared (no lever is named)"
    # the same cells with a majority answer: still no verdict
    assert set(lever_table(recs, blind, blind[("medical", 0, 10)])["larger lever"]) == {NO_IMAGE}


def test_the_lm_effect_counts_only_what_it_adds_through_the_image():
    """The medical LM has better priors (+20 points without the image) but every cell gains the
    same from its image with either LM; the medical encoder adds +20 through the image."""
    rng = np.random.default_rng(4)
    q = 2000
    u = rng.random(q)
    prior = {
        "general": (u < 0.3).astype(float),
        "medical": (u < 0.5).astype(float),
    }  # nested priors
    blind = {(m, 0, 10): prior[m] for m in prior}
    seen = rng.random(q)
    recs = {}
    for e, m in PAIRS:  # the image turns the same questions right (ones both LMs get wrong alone)
        gain = (seen < (0.4 if e == "medical" else 0.2)) * (1 - prior["medical"])
        recs[(e, m, "qformer", 0, 10)] = prior[m] + gain
    raw = np.mean(
        [
            recs[("general", "medical", "qformer", 0, 10)]
            - recs[("general", "general", "qformer", 0, 10)]
        ]
    )
    row = lever_table(recs, blind).iloc[0]
    assert row["larger lever"] == ENCODER and int(row["cells above blind"]) == 4
    assert (
        raw * 100 > 15
        and row["LM effect"] == pytest.approx(0, abs=1e-9)
        and row["encoder effect"] > 5
    )
    # against a majority answer better than every cell, no cell beats the blind baselines
    assert lever_table(recs, blind, np.ones(q)).iloc[0]["larger lever"] == NO_IMAGE
    with pytest.raises(ValueError, match="no-image LM records"):
        lever_table(recs, {("medical", 0, 10): prior["medical"]})
    with pytest.raises(ValueError, match="same questions"):
        lever_table(recs, blind, np.ones(3))


def test_only_cells_trained_at_every_seed_enter_and_bad_input_is_named():
    recs = records(encoder_later, fusions=("qformer", "linear"), seeds=2)
    for key in [k for k in recs if k[2] == "linear" and k[3] == 1]:
        del recs[key]  # linear was trained at seed 0 only
    assert set(table(recs)["fusions"]) == {"qformer"}
    with pytest.raises(ValueError, match="cannot be compared"):
        table({k: v for k, v in recs.items() if k[1] == "medical"})
    with pytest.raises(ValueError, match="empty"):
        lever_table({}, {})
    recs[("general", "general", "qformer", 0, 10)] = np.ones(3)
    with pytest.raises(ValueError, match="same questions"):
        table(recs)
    with pytest.raises(ValueError, match="n_boot"):
        table(records(encoder_later), n_boot=0)
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
