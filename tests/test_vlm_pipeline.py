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
    fusion=FusionConfig(qformer_hidden=32, num_queries=4, heads=2),
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
pre = vp.pretrain(size, data, 0)
vp.run_config(pre, data, size, vp.VLMRunConfig(checkpoint_dir={ckpt!r}, progress=False))
"""


@pytest.fixture(scope="module")
def toy():
    vp.set_threads(1)
    data = vp.make_medical_data(TOY, 0)
    return data, vp.pretrain(TOY, data, 0)


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
        TOY, n_caption_images=30, n_train_images=30, n_validation_images=30, n_test_images=30
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
    base = vp.blind_baselines(pre, data, TOY, 0, "validation", vqa_steps=10, lms=("general", "medical"),
                              progress=False)  # fmt: skip
    assert list(base) == ["majority answer per question", "general LM, question only (no image)",
                          "medical LM, question only (no image)"]  # fmt: skip
    for m in base.values():
        assert m["n_questions"] == len(data.validation_items)
    run = vp.VLMRunConfig(fusion="none", vqa_steps=10, progress=False)
    blind = vp.run_config(pre, data, TOY, run, "validation")
    assert blind.align_losses == [] and len(blind.vqa_losses) == 10
    # its answers do not change when every image's tokens are replaced by noise
    import torch

    from fieldnotes.vlm.evaluate import answer_questions

    noise = torch.randn_like(pre.features[("medical", "validation")])
    again = answer_questions(blind.model, pre.tokenizer, noise, data.validation_items)
    assert again == blind.predictions


def test_training_learns_and_ablation_has_every_cell(toy):
    data, pre = toy
    r = vp.run_config(pre, data, TOY, vp.VLMRunConfig(fusion="xattn", progress=False), "test")
    assert sum(r.vqa_losses[-5:]) < sum(r.vqa_losses[:5])
    assert r.metrics["n_questions"] == len(data.test_items)
    df = vp.run_ablation(pre, data, TOY, 0, progress=False)
    assert len(df) == 2 and set(df["language model"]) == {"general", "medical"}
    s = vp.summarize_ablation(df)
    assert list(s["seeds"]) == [1, 1]


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
