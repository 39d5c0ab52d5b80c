"""The experiment end to end at a toy size: disjoint splits, learning happens, blind baselines, a
SIGKILLed run resumes from its checkpoint's step to the same metrics, a checkpoint of another run is
refused, the CLI writes metrics.json and refuses a test seed that reuses a split."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from safetensors import safe_open

from fieldnotes.vlm import pipeline as vp
from fieldnotes.vlm.fusion import FusionConfig
from fieldnotes.vlm.language import LanguageConfig
from fieldnotes.vlm.vision import VisionConfig

TOY = replace(
    vp.SIZES["ci"], n_caption_images=48, n_train_images=48, n_test_images=12, n_general_images=48,
    n_general_text=100, lm_general_steps=5, lm_medical_steps=5, vision_general_steps=5, clip_steps=5,
    align_steps=10, vqa_steps=30, final_vqa_steps=30, batch_size=8, ablation_seeds=1,
    ablation_encoders=("medical",), ablation_lms=("general", "medical"), ablation_fusions=("qformer",),
    language=LanguageConfig(hidden=32, layers=2, heads=2), vision=VisionConfig(hidden=32, layers=1, heads=2),
    fusion=FusionConfig(qformer_hidden=32, num_queries=4, heads=2), scaling_pairs=(8, 16, 48),
    scaling_vqa_steps=10,
)  # fmt: skip

CHILD = """
import sys
from dataclasses import replace
sys.path.insert(0, {tests!r})
from test_vlm_pipeline import TOY
from fieldnotes.vlm import pipeline as vp
vp.set_threads(1)
size = replace(TOY, vqa_steps=400)
data = vp.make_medical_data(size, 0)
pre = vp.pretrain(size, data, 0, progress=False)
vp.run_config(pre, data, size, vp.VLMRunConfig(checkpoint_dir={ckpt!r}, progress=False))
"""


@pytest.fixture(scope="module")
def toy():
    vp.set_threads(1)
    data = vp.make_medical_data(TOY, 0)
    return data, vp.pretrain(TOY, data, 0)


def test_pretrain_progress_false_shows_no_bars(capfd):
    """progress=False silences every pre-training bar (LMs, general ViT, CLIP); progress=True
    shows them, so the check can fail."""
    data = vp.make_medical_data(TOY, 0)
    vp.pretrain(TOY, data, 0, progress=False)
    quiet = capfd.readouterr().err
    vp.pretrain(TOY, data, 0, progress=True)
    loud = capfd.readouterr().err
    names = ("general LM", "medical LM", "general ViT", "CLIP")
    assert all(name in loud for name in names), loud
    assert not any(name in quiet for name in names), quiet


def test_data_splits_and_shapes(toy):
    data, pre = toy
    assert len(data.caption_scans) == 48 and len(data.test_scans) == 12
    assert len(data.validation_scans) == TOY.n_validation_images
    assert pre.features[("medical", "train")].shape[:1] == (48,)
    assert pre.features[("medical", "validation")].shape[:1] == (TOY.n_validation_images,)
    assert set(pre.lm_state) == {"general", "medical"}
    assert set(pre.encoders) == {"general", "medical", "random"}
    assert pre.features[("random", "test")].shape == pre.features[("medical", "test")].shape
    with pytest.raises(ValueError, match="size"):
        vp.get_size("huge")


def _pixels(scans):
    return {s.image.tobytes() for s in scans}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_splits_are_disjoint_and_a_reused_test_seed_is_refused(seed):
    size = replace(
        TOY, n_caption_images=30, n_train_images=30, n_validation_images=30, n_test_images=30,
        scaling_pairs=(8, 16),
    )
    data = vp.make_medical_data(size, seed)
    splits = [data.caption_scans, data.train_scans, data.validation_scans, data.test_scans]
    pixels = [_pixels(s) for s in splits]
    assert sum(len(p) for p in pixels) == len(set().union(*pixels)) == 120  # no scan in two splits
    assert len(set(data.split_seeds.values())) == 4
    for name in ("caption", "train", "validation"):
        with pytest.raises(vp.SplitCollision, match=f"{name} split of seed {seed}"):
            vp.make_medical_data(size, seed, test_seed=data.split_seeds[name])
    other = vp.make_medical_data(size, seed, test_seed=12345)
    assert _pixels(other.test_scans).isdisjoint(set().union(*pixels[:3]))
    assert _pixels(other.train_scans) == pixels[1]  # the test seed changes only the test split


def test_blind_baselines_see_no_image(toy):
    data, pre = toy
    run = vp.VLMRunConfig(fusion="none", vqa_steps=10, progress=False)
    blind = vp.run_config(pre, data, TOY, run, "validation")
    assert blind.align_losses == [] and len(blind.vqa_losses) == 10
    # its answers do not change when every image's tokens are replaced by noise
    import torch

    from fieldnotes.vlm.evaluate import answer_questions

    noise = torch.randn_like(pre.features[("medical", "validation")])
    again = answer_questions(blind.model, pre.tokenizer, noise, data.validation_items)
    assert again == blind.predictions


def test_training_learns_and_ablation_has_every_cell_at_every_budget(toy):
    """Every cell is scored at the fractions of the final budget and at the check budget beyond
    it, along one run that goes on to the check budget."""
    data, pre = toy
    r = vp.run_config(pre, data, TOY, vp.VLMRunConfig(fusion="xattn", progress=False), "test")
    assert sum(r.vqa_losses[-5:]) < sum(r.vqa_losses[:5])
    assert r.metrics["n_questions"] == len(data.test_items)
    size = replace(TOY, check_vqa_steps=36)
    abl = vp.run_ablation([pre], data, size, 0, progress=False)
    assert TOY.budgets == (9, 18, 30) and size.budgets == (9, 18, 30, 36)
    assert len(abl.table) == 2 * 4 and set(abl.table["language model"]) == {"general", "medical"}
    assert sorted(set(abl.table["steps"])) == list(size.budgets)
    assert set(abl.correct) == {
        ("medical", m, "qformer", 0, b) for m in ("general", "medical") for b in size.budgets
    }
    assert all(len(v) == len(data.validation_items) for v in abl.correct.values())
    # the controls on the same questions: each LM without the image at every budget, the majority
    # answer, every cell once more on shuffled scans, and the figures' reference lines
    assert set(abl.blind) == {(m, 0, b) for m in ("general", "medical") for b in size.budgets}
    assert set(abl.shuffled) == {("medical", m, "qformer", 0) for m in ("general", "medical")}
    assert all(
        len(v) == len(data.validation_items)
        for v in (*abl.blind.values(), *abl.shuffled.values(), abl.majority)
    )
    assert list(abl.blind_metrics) == ["majority answer per question", "general LM, question only (no image)",
                                       "medical LM, question only (no image)"]  # fmt: skip
    assert abl.blind_metrics["medical LM, question only (no image)"][
        "overall_accuracy"
    ] == pytest.approx(abl.blind[("medical", 0, TOY.final_vqa_steps)].mean())
    assert abl.blind_metrics["majority answer per question"]["overall_accuracy"] == pytest.approx(
        abl.majority.mean()
    )
    for (
        _,
        row,
    ) in abl.table.iterrows():  # each row's accuracy is the mean of its per-question record
        key = (row["encoder"], row["language model"], row["fusion"], row["seed"], row["steps"])
        assert row["overall accuracy"] == pytest.approx(abl.correct[key].mean())
    s = vp.summarize_ablation(abl.table)
    assert list(s["seeds"]) == [1] * 8
    final = vp.at_budget(abl.table, TOY.final_vqa_steps)
    assert len(final) == 2 and "steps" not in final.columns
    with pytest.raises(ValueError, match="budgets scored"):
        vp.at_budget(abl.table, 7)


def test_check_budget_must_lie_beyond_the_final_one():
    assert (
        vp.SIZES["book"].budgets[-1]
        == vp.SIZES["book"].check_vqa_steps
        > vp.SIZES["book"].final_vqa_steps
    )
    for bad in (TOY.final_vqa_steps, 5, True, 40.0):
        with pytest.raises(ValueError, match="check_vqa_steps"):
            replace(TOY, check_vqa_steps=bad)


def test_only_the_check_fusions_train_on_to_the_check_budget(toy):
    """The cells outside ``check_fusions`` stop at the final budget (the end of their own schedule)
    and are scored on shuffled scans there; the check fusion and the blind LMs go on."""
    from fieldnotes.vlm.controls import image_dependence
    from fieldnotes.vlm.fusion import BLIND

    data, pre = toy
    size = replace(
        TOY, check_vqa_steps=36, ablation_lms=("medical",), ablation_fusions=("qformer", "linear")
    )
    assert size.cell_budgets("qformer") == size.cell_budgets(BLIND) == (9, 18, 30, 36)
    assert size.cell_budgets("linear") == (9, 18, 30)
    abl = vp.run_ablation([pre], data, size, 0, progress=False)
    steps = abl.table.groupby("fusion")["steps"].agg(lambda s: sorted(s))
    assert steps["linear"] == [9, 18, 30] and steps["qformer"] == [9, 18, 30, 36]
    assert set(abl.blind) == {("medical", 0, b) for b in size.budgets}
    ends = image_dependence(abl.correct, abl.shuffled).set_index("fusion")["steps"]
    assert ends["linear"] == 30 and ends["qformer"] == 36
    with pytest.raises(ValueError, match="seed_fusions"):
        replace(size, seed_fusions=("linear",))
    with pytest.raises(ValueError, match="check_fusions must name fusions"):
        replace(size, check_fusions=("qformr",))


def test_scoring_along_the_run_does_not_change_it(toy):
    data, pre = toy
    run = vp.VLMRunConfig(vqa_steps=20, progress=False)
    plain = vp.run_config(pre, data, TOY, run, "validation")
    along = vp.run_config(pre, data, TOY, run, "validation", budgets=(5, 12, 20))
    assert sorted(along.predictions_at) == [5, 12, 20] and plain.predictions_at == {}
    assert along.predictions == plain.predictions == along.predictions_at[20]
    assert along.vqa_losses == plain.vqa_losses
    short = vp.run_config(pre, data, TOY, replace(run, vqa_steps=5), "validation")
    assert len(short.vqa_losses) == 5  # a run of its own anneals to 0 by step 5; the probe does not
    with pytest.raises(ValueError, match="budgets"):
        vp.run_config(pre, data, TOY, run, "validation", budgets=(25,))


def test_further_pretraining_seeds_re_pretrain_every_part(toy):
    data, pre = toy
    size = replace(
        TOY, ablation_seeds=2, ablation_fusions=("qformer", "linear"), seed_fusions=("qformer",)
    )
    pres = vp.pretrain_seeds(size, data, 0, pre)
    assert len(pres) == 2 and pres[0] is pre
    for lm in ("general", "medical"):
        a, b = pre.lm_state[lm], pres[1].lm_state[lm]
        assert any(not (a[k].shape == b[k].shape and (a[k] == b[k]).all()) for k in a)
    for enc in ("general", "medical"):
        assert not (
            pre.features[(enc, "validation")] == pres[1].features[(enc, "validation")]
        ).all()
    abl = vp.run_ablation(pres, data, size, 0, progress=False)
    cells = abl.table.groupby("seed")["fusion"].agg(lambda f: sorted(set(f)))
    assert cells[0] == ["linear", "qformer"] and cells[1] == [
        "qformer"
    ]  # further seeds: seed_fusions only
    with pytest.raises(ValueError, match="ablation_seeds"):
        replace(TOY, ablation_seeds=0)
    with pytest.raises(ValueError, match="budget_fractions"):
        replace(TOY, budget_fractions=(0.5,))
    with pytest.raises(ValueError, match="scaling_pairs"):
        replace(TOY, scaling_pairs=(1,))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("lr", float("nan"), "lr must be a finite number"),
        ("lr", -1e-3, "lr must be a finite number"),
        ("image_size", 0, "image_size must be an int >= 1"),
        ("final_vqa_steps", 0, "final_vqa_steps must be an int >= 1"),
        ("final_vqa_steps", -5, "final_vqa_steps must be an int >= 1"),
        ("n_test_images", 0, "n_test_images must be an int >= 1"),
        ("lora_r", -1, "lora_r must be an int >= 0"),
        ("final_vqa_steps", float("nan"), "final_vqa_steps must be an int >= 1, got nan"),
        ("check_vqa_steps", float("nan"), "check_vqa_steps must be None or an int above"),
        ("ablation_seeds", float("nan"), "ablation_seeds must be an int >= 1, got nan"),
        ("lora_r", float("nan"), "lora_r must be an int >= 0"),
        ("scaling_pairs", (8, 100), "exceed the 48 caption pairs"),
    ],
)
def test_a_size_refuses_bad_counts_before_anything_trains(field, value, error):
    with pytest.raises(ValueError, match=error):
        replace(TOY, **{field: value})


def test_data_scaling_runs_every_setting(toy):
    from fieldnotes.vlm.scaling import data_scaling, scaling_settings

    data, pre = toy
    assert scaling_settings(TOY) == [(8, 0.0), (16, 0.0), (48, 0.0), (48, TOY.scaling_noise)]
    df = data_scaling(pre, data, TOY, 0, progress=False)
    assert list(df["pairs"]) == [8, 16, 48, 48] and list(df["caption noise"]) == [
        0,
        0,
        0,
        TOY.scaling_noise,
    ]
    assert (
        (df["overall lo"] <= df["overall accuracy"]) & (df["overall accuracy"] <= df["overall hi"])
    ).all()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_metrics(toy, tmp_path):
    data, pre = toy
    size = replace(TOY, vqa_steps=400)
    ckpt = tmp_path / "ckpt"
    script = CHILD.format(tests=os.path.dirname(__file__), ckpt=str(ckpt))
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    marker = ckpt / "stage2" / "last.safetensors"
    deadline = time.time() + 300
    while not marker.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert child.poll() is None, (
        f"the child ended before it could be killed: {child.stderr.read()[-2000:]}"
    )
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    with safe_open(str(marker), framework="pt") as f:
        saved_step = int(f.metadata()["step"])
    assert 0 < saved_step < 400 and saved_step % 10 == 0
    resumed = vp.run_config(
        pre, data, size, vp.VLMRunConfig(checkpoint_dir=str(ckpt), progress=False)
    )
    # the training reports where it continued: stage 1 was complete, stage 2 from its checkpoint
    assert resumed.resumed_from == {"stage1": size.align_steps, "stage2": saved_step}
    fresh = vp.run_config(pre, data, size, vp.VLMRunConfig(progress=False))
    assert fresh.resumed_from == {"stage1": 0, "stage2": 0}
    assert resumed.predictions == fresh.predictions
    assert resumed.metrics == fresh.metrics
    assert resumed.vqa_losses == pytest.approx(fresh.vqa_losses, abs=0)


def test_a_checkpoint_of_another_run_is_refused_not_resumed(toy, tmp_path):
    from fieldnotes.vlm.train import CheckpointMismatch

    data, pre = toy
    run = vp.VLMRunConfig(vqa_steps=10, checkpoint_dir=str(tmp_path), progress=False)
    vp.run_config(pre, data, TOY, run, "validation")
    for change in ({"lm": "general"}, {"seed": 5}, {"precision": "bf16"}, {"vqa_steps": 20}):
        with pytest.raises(CheckpointMismatch, match="stage1.*written by another configuration"):
            vp.run_config(pre, data, TOY, replace(run, **change), "validation")
    again = vp.run_config(pre, data, TOY, replace(run, progress=True, device="cpu"), "validation")
    assert again.resumed_from == {"stage1": TOY.align_steps, "stage2": 10}


def test_the_final_run_in_three_precisions(toy):
    data, pre = toy
    size = replace(TOY, precision_steps=8)
    runs = vp.compare_precisions(pre, data, size, vp.VLMRunConfig(progress=False))
    assert list(runs) == ["fp32", "bf16", "fp16"]
    assert all(len(r.vqa_losses) == 8 for r in runs.values())
    assert runs["fp32"].vqa_scales == [] and runs["bf16"].vqa_scales == []
    assert len(runs["fp16"].vqa_scales) == 8 and runs["fp16"].vqa_scales[0] == 2.0**16
    # the same initial weights and batches: the first losses agree to rounding, the runs are not identical
    assert runs["bf16"].vqa_losses[0] == pytest.approx(runs["fp32"].vqa_losses[0], abs=0.1)
    assert runs["bf16"].vqa_losses != runs["fp32"].vqa_losses
    assert all(r.metrics["n_questions"] == len(data.validation_items) for r in runs.values())
    with pytest.raises(ValueError, match="precisions"):
        vp.compare_precisions(pre, data, size, vp.VLMRunConfig(progress=False), ("fp8",))


def test_cli_writes_metrics(monkeypatch, tmp_path):
    from fieldnotes.vlm.__main__ import main

    monkeypatch.setitem(vp.SIZES, "ci", TOY)
    assert main(["--size", "ci", "--seed", "1", "--test-seed", "77", "--only", "final", "--out", str(tmp_path),
                 "--no-progress"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["test_seed"] == 77 and m["seed"] == 1 and "ablation" not in m
    assert 0.0 <= m["final"]["closed_accuracy"] <= 1.0 and m["final"]["n_questions"] > 0
    assert m["zero_shot"]["name"] == "general VLM, zero-shot"
    assert set(m["question_only"]) == set(m["final"])
    assert m["question_only"]["name"] == "medical LM, question only (no image)"
    assert m["question_only"]["n_questions"] == m["final"]["n_questions"]
    assert m["majority_answer"]["n_questions"] == m["final"]["n_questions"]
    assert m["precision"] == {"precision": "fp32", "loss_scale_skips": None, "skipped_steps": None,
                              "gradient_scale_first": None, "gradient_scale_last": None}  # fmt: skip


def test_cli_fp16_records_its_scaler_and_the_full_run_its_levers(monkeypatch, tmp_path):
    from fieldnotes.vlm.__main__ import main

    size = replace(TOY, ablation_encoders=("general", "medical"), final_vqa_steps=10, align_steps=4,
                   scaling_pairs=(16, 48), scaling_vqa_steps=5)  # fmt: skip
    monkeypatch.setitem(vp.SIZES, "ci", size)
    assert (
        main(["--size", "ci", "--precision", "fp16", "--out", str(tmp_path), "--no-progress"]) == 0
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    p = m["precision"]
    assert p["precision"] == "fp16" and p["gradient_scale_first"] == 2.0**16
    assert p["loss_scale_skips"] == len(p["skipped_steps"])
    assert [r["steps"] for r in m["levers"]] == list(size.budgets)
    from fieldnotes.vlm.levers import ENCODER, LM, NEITHER, NO_IMAGE

    assert {r["larger lever"] for r in m["levers"]} <= {ENCODER, LM, NEITHER, NO_IMAGE}
    assert len(m["image_dependence"]) == 4 and {
        "own scans",
        "shuffled scans",
        "drop (points)",
    } <= set(m["image_dependence"][0])
    assert len(m["ablation"]) == 4 * len(size.budgets)
    assert [r["pairs"] for r in m["data_scaling"]] == [16, 48, 48]
    assert set(m["ablation_blind_baselines"]) == {"majority answer per question", "general LM, question only (no image)",
                                                  "medical LM, question only (no image)"}  # fmt: skip


def test_cli_refuses_a_test_seed_that_reuses_a_training_split(monkeypatch, tmp_path, capsys):
    from fieldnotes.vlm.__main__ import main

    def never(*args, **kwargs):
        raise AssertionError("nothing may train when the test seed collides")

    monkeypatch.setattr(vp, "run_chapter", never)
    train_seed = vp.split_seeds(0)["train"]
    assert (
        main(
            ["--seed", "0", "--test-seed", str(train_seed), "--out", str(tmp_path), "--no-progress"]
        )
        == 2
    )
    assert "same scans as the train split of seed 0" in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_run_config_names_and_validation():
    assert vp.VLMRunConfig().name == "medical encoder + medical LM + qformer"
    assert (
        vp.VLMRunConfig(fusion="none", lm="general").name == "general LM, question only (no image)"
    )
    with pytest.raises(ValueError, match="fusion"):
        vp.VLMRunConfig(fusion="perceiver")
    with pytest.raises(ValueError, match="vqa_steps"):
        vp.VLMRunConfig(vqa_steps=0)
