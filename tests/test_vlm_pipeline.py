"""The experiment end to end at a toy size: learning happens, a killed run resumes to the same metrics,
the CLI writes metrics.json."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

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
vp.run_config(pre, data, size, "medical", "medical", "qformer", 0, checkpoint_dir={ckpt!r}, progress=False)
"""


@pytest.fixture(scope="module")
def toy():
    vp.set_threads(1)
    data = vp.make_medical_data(TOY, 0)
    return data, vp.pretrain(TOY, data, 0)


def test_data_splits_and_shapes(toy):
    data, pre = toy
    assert len(data.caption_scans) == 48 and len(data.test_scans) == 12
    assert pre.features[("medical", "train")].shape[:1] == (48,)
    assert set(pre.lm_state) == {"general", "medical"}
    assert set(pre.encoders) == {"general", "medical", "random"}
    assert pre.features[("random", "test")].shape == pre.features[("medical", "test")].shape
    with pytest.raises(ValueError, match="collides"):
        vp.make_medical_data(TOY, 0, test_seed=1)
    with pytest.raises(ValueError, match="size"):
        vp.get_size("huge")


def test_training_learns_and_ablation_has_every_cell(toy):
    data, pre = toy
    r = vp.run_config(pre, data, TOY, "medical", "medical", "xattn", 0, progress=False)
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
    child.wait()
    resumed = vp.run_config(pre, data, size, "medical", "medical", "qformer", 0, checkpoint_dir=str(ckpt),
                            progress=False)  # fmt: skip
    fresh = vp.run_config(pre, data, size, "medical", "medical", "qformer", 0, progress=False)
    assert resumed.predictions == fresh.predictions
    assert resumed.metrics == fresh.metrics
    assert resumed.vqa_losses == pytest.approx(fresh.vqa_losses, abs=0)


def test_cli_writes_metrics(monkeypatch, tmp_path):
    from fieldnotes.vlm.__main__ import main

    monkeypatch.setitem(vp.SIZES, "ci", TOY)
    assert main(["--size", "ci", "--seed", "1", "--test-seed", "77", "--only", "final", "--out", str(tmp_path),
                 "--no-progress"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["test_seed"] == 77 and m["seed"] == 1 and "ablation" not in m
    assert 0.0 <= m["final"]["closed_accuracy"] <= 1.0 and m["final"]["n_questions"] > 0
    assert m["zero_shot"]["name"] == "general VLM, zero-shot"
