"""The chapter's computed verdicts: they say what the table says, at the full grid and the reduced one."""

import itertools

import pandas as pd
import pytest

from fieldnotes.vlm import findings


def table(acc, encoders=("general", "medical"), lms=("general", "medical"),
          fusions=("xattn", "qformer", "linear"), seeds=2):  # fmt: skip
    """A run_ablation-shaped table whose overall accuracy is ``acc(encoder, lm, fusion, seed)``."""
    rows = [{"encoder": e, "language model": m, "fusion": f, "seed": s, "overall accuracy": acc(e, m, f, s)}
            for e, m, f, s in itertools.product(encoders, lms, fusions, range(seeds))]  # fmt: skip
    return pd.DataFrame(rows)


def lm_wins(e, m, f, s):
    # the medical LM adds 15 points, the medical encoder 4, fusions 0, 1, 2; seeds +-1
    return 0.5 + 0.15 * (m == "medical") + 0.04 * (e == "medical") + 0.01 * ("xattn", "qformer", "linear").index(f) \
        + (0.01 if s else -0.01)  # fmt: skip


def test_full_grid_names_the_language_model_and_the_lesson_holds():
    v = findings.ablation_verdict(table(lm_wins), "book", 0)
    assert v["grid"] == (
        "book size, seed 0, 24 runs: every encoder × LM × fusion cell, compared here at "
        "the 2 pre-training seeds all cells share"
    )
    assert v["top_factor"] == "the language model"
    assert v["top_spread"] == pytest.approx(15.0)
    assert v["lm"] == ("Swapping the general language model for the medical one changed overall "
                       "accuracy by +15.0 points across the 6 encoder/fusion combinations.")  # fmt: skip
    assert "+4.0 points across the 6 LM/fusion" in v["encoder"]
    # the fusions differ by at most 2 points; the seed sd of a cell is sqrt(2) points
    assert "at most 2.0 points apart; in 4 of the 4 pairs" in v["fusion"]
    assert v["fusion"].endswith("(2.8 points).")
    assert v["lesson"] == (
        "holds: averaged over the rest, accuracy moved by +4.0 points with the medical encoder and "
        "+15.0 points with the medical language model, against 1.3 points between two fusions (the mean "
        "over the pairs of fusions of the gap between their means, each also a two-level difference; a "
        "domain part counts only when its gain is positive and larger)"
    )


def test_cells_at_further_seeds_do_not_tilt_the_comparison():
    """The book-size design: Q-Former cells at two pre-training seeds, the other fusions at one.
    Seed 1 scores 10 points higher everywhere; the fusions are equal at a shared seed, so the
    comparison must find no fusion effect and the grid must say which runs it left out."""
    df = table(lambda e, m, f, s: 0.5 + 0.1 * s + 0.05 * (m == "medical"))
    df = df[(df["fusion"] == "qformer") | (df["seed"] == 0)]
    assert findings.common_seeds(df) == [0]
    effects = findings.factor_effects(df).set_index("factor")["spread (max − min)"]
    assert effects["fusion"] == pytest.approx(0) and effects["language model"] == pytest.approx(
        0.05
    )
    assert findings.fusion_gap(df) == pytest.approx(0)
    assert findings.swap_effects(df, "language model") == pytest.approx([5.0] * 6)
    v = findings.ablation_verdict(df, "book", 0)
    assert v["grid"].endswith(
        "at the 1 pre-training seed all cells share (4 runs at further seeds "
        "enter only the lever table)"
    )
    with pytest.raises(ValueError, match="share no pre-training seed"):
        findings.factor_effects(df.assign(seed=df["seed"].where(df["fusion"] != "xattn", 7)))


def test_a_fusion_lever_larger_than_the_encoder_is_reported():
    def fusion_big(e, m, f, s):
        return lm_wins(e, m, f, s) + 0.08 * (f == "linear")

    v = findings.ablation_verdict(table(fusion_big), "book", 0)
    assert v["lesson"].startswith("holds for the language model but not for the encoder")
    swapped = findings.ablation_verdict(
        table(lambda e, m, f, s: 0.5 + 0.3 * (f == "xattn")), "book", 0
    )
    assert swapped["top_factor"] == "the fusion"
    assert swapped["lesson"].startswith("does not hold")


def test_the_reduced_ci_grid_says_what_it_cannot_test():
    df = table(lambda e, m, f, s: 0.425, lms=("medical",), fusions=("qformer",), seeds=1)
    v = findings.ablation_verdict(df, "ci", 0)
    assert (
        v["grid"]
        == "ci size, seed 0, 2 runs: a reduced grid, not the full ablation, compared here at the 1 "
        "pre-training seed all cells share"
    )
    assert v["top_factor"] == "none, every level of the encoder gave the same mean"
    assert v["top_spread"] == 0.0
    assert (
        v["lm"].startswith("The language model was not varied")
        and "(only the medical language model was trained)" in v["lm"]
    )
    assert v["encoder"].endswith("by +0.0 points in the one LM/fusion combination trained.")
    assert (
        v["fusion"]
        == "Only one fusion (qformer) was trained at this size, so the fusions are not compared."
    )
    assert v["lesson"].startswith("cannot be tested at this size")
    one = findings.ablation_verdict(table(lambda e, m, f, s: 0.4 + 0.1 * (e == "medical"), lms=("medical",),
                                          fusions=("qformer",), seeds=1), "ci", 0)  # fmt: skip
    assert one["top_factor"] == "the encoder, the only choice varied at this size"
    assert one["top_spread"] == pytest.approx(10.0)


def test_swap_effects_and_bad_tables():
    assert findings.swap_effects(table(lm_wins), "encoder") == pytest.approx([4.0] * 6)
    assert findings.swap_effects(table(lm_wins, lms=("medical",)), "language model") == []
    with pytest.raises(ValueError, match="factor"):
        findings.swap_effects(table(lm_wins), "optimizer")
    with pytest.raises(ValueError, match="lacks columns"):
        findings.factor_effects(pd.DataFrame({"encoder": ["general"]}))
    with pytest.raises(ValueError, match="empty"):
        findings.ablation_verdict(table(lm_wins).iloc[:0], "ci", 0)


def metrics(side=0.5):
    def g(acc, n=10):
        return {"accuracy": acc, "n": n}

    return {"by_question_type": {"side/open": g(side), "location/open": g(0.6), "modality/closed": g(1.0),
                                 "modality/open": g(0.9), "finding/open": g(0.8), "organ/open": g(0.7, 20)},
            "by_modality": {"x-ray/closed": g(0.78), "x-ray/open": g(0.68)}}  # fmt: skip


def test_weak_spots_pool_what_and_where():
    w = findings.weak_spots(metrics())
    assert w["weakest_type"] == "side (open)" and w["weakest_acc"] == 0.5
    assert w["what_acc"] == pytest.approx((10 + 9 + 8 + 14) / 50)
    assert w["where_acc"] == pytest.approx(0.55)
    assert w["what_vs_where"] == "better than"
    assert (w["xray_closed_acc"], w["xray_open_acc"]) == (0.78, 0.68)
    assert findings.weak_spots(metrics(side=1.0))["weakest_type"] == "location (open)"
    bad = metrics()
    del bad["by_question_type"]["side/open"]
    with pytest.raises(ValueError, match="side/open"):
        findings.weak_spots(bad)


def test_compare():
    assert findings.compare(0.4, 0.5) == "worse than"
    assert findings.compare(0.6, 0.5) == "better than"
    assert findings.compare(0.5, 0.5) == "exactly as well as"


def test_against_blind_counts_cells_above_the_strongest_blind_baseline():
    import pandas as pd

    from fieldnotes.vlm.findings import against_blind

    summary = pd.DataFrame({"overall accuracy mean": [0.50, 0.56, 0.70]})
    blind = {"majority answer per question": {"overall_accuracy": 0.53},
             "medical LM, question only (no image)": {"overall_accuracy": 0.55}}  # fmt: skip
    v = against_blind(summary, blind)
    assert (v["best_blind"], v["cells_above"], v["cells"]) == (
        "medical LM, question only (no image)",
        2,
        3,
    )
    assert v["sentence"].startswith("2 of the 3 trained cells scored above")
    assert against_blind(summary.iloc[:1], blind)["sentence"].startswith(
        "None of the 1 trained cell "
    )
    assert against_blind(summary.iloc[2:], blind)["sentence"].startswith("Every one of the 1")
    with pytest.raises(ValueError, match="baselines is empty"):
        against_blind(summary, {})


def test_score_table_shows_each_score_with_its_interval():
    from fieldnotes.vlm.evaluate import vqa_metrics
    from fieldnotes.vlm.findings import score_table
    from fieldnotes.vlm.text import VQAItem

    items = [
        VQAItem(0, "a?", "yes", "closed", "normal", "ct"),
        VQAItem(0, "b?", "ct", "open", "modality", "ct"),
    ]
    table = score_table({"m": vqa_metrics(items, ["yes", "mri"])})
    assert table.loc[0, "closed accuracy"] == "100.0% [100.0%, 100.0%]"
    assert (
        table.loc[0, "open exact match"] == "0.0% [0.0%, 0.0%]" and table.loc[0, "questions"] == 2
    )
    with pytest.raises(ValueError, match="models is empty"):
        score_table({})


def test_precision_findings_compare_with_fp32():
    from types import SimpleNamespace

    from fieldnotes.vlm.findings import precision_findings

    def run(losses, acc, scales=(), skipped=()):
        return SimpleNamespace(vqa_losses=losses, metrics={"overall_accuracy": acc},
                               vqa_scales=list(scales), vqa_skipped_steps=list(skipped))  # fmt: skip

    runs = {"fp32": run([4.0, 3.0, 2.0, 1.0], 0.6), "bf16": run([4.0, 3.0, 2.0, 1.5], 0.6),
            "fp16": run([9.0, 3.0, 2.0, 0.5], 0.5, [65536.0, 32768.0, 32768.0, 32768.0], [0])}  # fmt: skip
    f = precision_findings(runs)
    assert f["fp32_tail_loss"] == 1.0 and f["bf16_tail_loss"] == 1.5
    assert f["bf16_loss_vs_fp32"] == "above" and f["bf16_loss_gap"] == pytest.approx(0.5)
    assert f["fp16_loss_vs_fp32"] == "below" and f["fp16_vs_fp32"] == "worse than"
    assert f["bf16_vs_fp32"] == "exactly as well as"
    assert (f["fp16_skipped"], f["fp16_scale_start"], f["fp16_scale_min"]) == (1, 65536.0, 32768.0)
    assert precision_findings(runs, tail=0.5)["fp32_tail_loss"] == 1.5
    with pytest.raises(ValueError, match="fp32"):
        precision_findings({"bf16": runs["bf16"]})
    with pytest.raises(ValueError, match="tail"):
        precision_findings(runs, tail=0)


def test_lesson_by_budget_and_the_best_cell():
    early = table(lambda e, m, f, s: 0.5 + 0.3 * (f == "xattn"))  # fusion matters most early
    late = table(lm_wins)
    both = pd.concat([early.assign(steps=10), late.assign(steps=50)], ignore_index=True)
    words = findings.lesson_by_budget(both, "book", 0)
    assert words["lesson_first"].startswith("does not hold") and words["lesson_final"].startswith(
        "holds:"
    )
    assert (
        words["lesson_changes"]
        == "changes with the budget: does not hold after 10 steps, holds after 50 steps"
    )
    summary = words["lesson_summary"]
    assert summary.startswith("holds: ") and "; after 10 steps it does not hold" in summary
    assert findings.lesson_by_budget(late.assign(steps=5), "book", 0)["lesson_changes"] == (
        "reads the same at every budget scored"
    )
    best = findings.best_cell(late, ("medical", "medical", "linear"))
    assert (
        best["best_cell"] == "medical encoder + medical LM + linear"
        and best["best_is_final"] == "is"
    )
    assert findings.best_cell(late, ("medical", "medical", "qformer"))["best_is_final"] == "is not"
    with pytest.raises(ValueError, match="steps"):
        findings.lesson_by_budget(late, "book", 0)


def test_budget_design_says_how_far_the_cells_train():
    from fieldnotes.vlm.findings import budget_design

    stop = budget_design(500, None)
    assert (
        stop.startswith("the final model's budget of 500 steps") and "end of its schedule" in stop
    )
    on = budget_design(500, 800)
    assert "beyond the final model's budget of 500 steps" in on and "aims at 800 steps" in on
    assert "still at a raised learning rate" in on and "stop at" not in on
    some = budget_design(500, 800, ("xattn", "linear"))
    assert some.startswith(on) and "the xattn and linear cells, which the lever verdict does not use, stop at 500 steps" in some
    with pytest.raises(ValueError, match="check_steps"):
        budget_design(500, 500)


def test_question_giveaways_and_valid_closed_answers_and_results_edition(tmp_path):
    import json

    from fieldnotes.vlm.data import Scan
    from fieldnotes.vlm.text import VQAItem

    img = None
    scans = [Scan(img, "x-ray", "nodule", "left", "lung", "left lung", "small", 4.0),
             Scan(img, "x-ray", "none", None, None, None, None, None)]  # fmt: skip
    items = [VQAItem(0, "where is the nodule?", "left lung", "open", "location", "x-ray"),
             VQAItem(0, "which organ is abnormal?", "lung", "open", "organ", "x-ray"),
             VQAItem(0, "is there a nodule?", "yes", "closed", "presence", "x-ray"),
             VQAItem(1, "is there a nodule?", "no", "closed", "presence", "x-ray")]  # fmt: skip
    majority = {"by_question_type": {"location/open": {"accuracy": 1.0, "n": 1},
                                     "organ/open": {"accuracy": 0.0, "n": 1}}}  # fmt: skip
    g = findings.question_giveaways(scans, items, majority)
    assert g == {"give_abnormal_share": 1.0, "give_named_share": 0.5, "give_presence_true": 1.0,
                 "give_majority_acc": 0.5}  # fmt: skip
    with pytest.raises(ValueError, match="presence questions"):
        findings.question_giveaways(scans, items[:2], majority)
    assert findings.valid_closed_share(items, ["x", "y", "circle", "no"]) == 0.5
    with pytest.raises(ValueError, match="no closed"):
        findings.valid_closed_share(items[:2], ["a", "b"])
    assert findings.book_results_path().parts[-3:] == ("benchmarks", "results", "vlm_metrics.json")
    path = tmp_path / "vlm_metrics.json"
    assert "missing" in findings.results_edition(path)
    path.write_text(json.dumps({"final": {}, "ablation": []}))
    assert findings.results_edition(path).endswith("the book-size run of this edition is pending")
    path.write_text(json.dumps({"levers": [], "image_dependence": []}))
    assert "come from this edition's benchmark" in findings.results_edition(path)
    path.write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        findings.results_edition(path)


def test_pretraining_compute_counts_the_medical_lm_twice():
    from fieldnotes.vlm.pipeline import SIZES

    c = findings.pretraining_compute(SIZES["book"])
    b = SIZES["book"]
    assert c["lm_medical_steps"] == b.lm_general_steps + b.lm_medical_steps
    assert c["lm_extra_share"] == pytest.approx(b.lm_medical_steps / b.lm_general_steps)
    assert c["enc_extra_share"] == pytest.approx(b.clip_steps / b.vision_general_steps - 1)
