"""Training loop: schedule, learning, checkpoint round trip, a SIGKILLed run resumes from the step its
checkpoint holds to the same weights, a checkpoint of another configuration is refused, FP16 with a
gradient scaler learns, skips overflowing steps and resumes exactly."""

import logging
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fieldnotes.vlm.train import (
    CheckpointMismatch,
    TrainConfig,
    config_fingerprint,
    cosine_factor,
    load_checkpoint,
    save_checkpoint,
    train_loop,
)


def test_cosine_schedule_values():
    assert cosine_factor(0, 100, 10) == pytest.approx(0.1)
    assert cosine_factor(9, 100, 10) == pytest.approx(1.0)
    assert cosine_factor(10, 100, 10) == pytest.approx(1.0)
    assert cosine_factor(55, 100, 10) == pytest.approx(0.5)
    assert cosine_factor(100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert cosine_factor(32, 100, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 22 / 90)))


def _problem(seed=0):
    g = torch.Generator().manual_seed(0)  # the data never changes
    w_true = torch.randn(5, 1, generator=g)
    x = torch.randn(256, 5, generator=g)
    y = x @ w_true
    torch.manual_seed(seed)  # the initial weights do
    model = torch.nn.Linear(5, 1)

    def batch(step):
        idx = torch.as_tensor(np.random.default_rng([7, step]).integers(0, 256, 32))
        return {"x": x[idx], "y": y[idx]}

    def loss_fn(b):
        return torch.nn.functional.mse_loss(model(b["x"]), b["y"])

    return model, batch, loss_fn


def test_loop_learns_a_linear_map():
    model, batch, loss_fn = _problem()
    r = train_loop(
        list(model.parameters()), loss_fn, batch, TrainConfig(steps=300, lr=0.05, progress=False)
    )
    assert r.losses[-1] < 1e-3 * r.losses[0]
    assert r.samples == 300 * 32 and r.samples_per_second > 0


def test_checkpoint_round_trip(tmp_path):
    model, batch, loss_fn = _problem()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params)
    loss_fn(batch(0)).backward()
    opt.step()
    config = config_fingerprint(TrainConfig(steps=5), params)
    history = {"losses": [0.5], "scales": [], "skipped_steps": []}
    save_checkpoint(tmp_path / "c.safetensors", params, opt, 1, history, config)
    model2, _, _ = _problem(seed=3)
    opt2 = torch.optim.AdamW(list(model2.parameters()))
    step, back = load_checkpoint(
        tmp_path / "c.safetensors", list(model2.parameters()), opt2, config
    )
    assert (step, back) == (1, history)
    assert all(torch.equal(a, b) for a, b in zip(params, model2.parameters(), strict=True))
    assert torch.equal(
        opt.state[params[0]]["exp_avg"], opt2.state[list(model2.parameters())[0]]["exp_avg"]
    )


KILLED_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from test_vlm_train import _problem
from fieldnotes.vlm.train import TrainConfig, train_loop

model, batch, loss_fn = _problem()

def blocking_batch(step):
    if step == {block_at}:  # the parent SIGKILLs this process while it waits here
        print("waiting at step", step, flush=True)
        sys.stdin.readline()
    return batch(step)

cfg = TrainConfig(steps=40, lr=0.05, precision={precision!r}, progress=False, checkpoint_dir={ckpt!r},
                  checkpoint_every=10)
train_loop(list(model.parameters()), loss_fn, blocking_batch, cfg)
print("finished", flush=True)
"""


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_sigkilled_run_resumes_from_its_checkpoint_to_identical_weights(
    tmp_path, caplog, precision
):
    model, batch, loss_fn = _problem()
    full = train_loop(list(model.parameters()), loss_fn, batch,
                      TrainConfig(steps=40, lr=0.05, precision=precision, progress=False))  # fmt: skip
    reference = [p.detach().clone() for p in model.parameters()]

    script = KILLED_CHILD.format(tests=os.path.dirname(__file__), block_at=25, precision=precision,
                                 ckpt=str(tmp_path))  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = child.stdout.readline()
        assert line == "waiting at step 25\n", f"child said {line!r}: {child.stderr.read()[-2000:]}"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (tmp_path / "last.safetensors").exists()

    model, batch, loss_fn = _problem(seed=99)  # a fresh process: different initial weights
    cfg = TrainConfig(steps=40, lr=0.05, precision=precision, progress=False, checkpoint_dir=str(tmp_path),
                      checkpoint_every=10)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="fieldnotes.vlm.train"):
        resumed = train_loop(list(model.parameters()), loss_fn, batch, cfg, desc="resume")
    assert resumed.resumed_from == 20  # the last checkpoint before the kill at step 25
    assert "resume: resumed from step 20 of 40" in caplog.text
    assert resumed.samples == 20 * 32  # only the 20 missing steps ran here
    assert resumed.losses == full.losses and resumed.scales == full.scales
    assert all(torch.equal(a, b) for a, b in zip(reference, model.parameters(), strict=True))


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    model, batch, loss_fn = _problem()
    cfg = TrainConfig(steps=20, lr=0.05, progress=False, checkpoint_dir=str(tmp_path), checkpoint_every=10,
                      fingerprint="linear map, data v1")  # fmt: skip
    train_loop(list(model.parameters()), loss_fn, batch, cfg)
    before = [p.detach().clone() for p in model.parameters()]
    for change in ({"lr": 0.01}, {"fingerprint": "linear map, data v2"}, {"precision": "bf16"}):
        with pytest.raises(CheckpointMismatch, match="written by another configuration") as e:
            train_loop(
                list(model.parameters()), loss_fn, batch, TrainConfig(**{**vars(cfg), **change})
            )
        assert str(tmp_path) in str(e.value) and next(iter(change)) in str(e.value)
    with pytest.raises(
        CheckpointMismatch, match="fingerprint: 'linear map, data v1' in the checkpoint"
    ):
        train_loop(
            list(model.parameters()),
            loss_fn,
            batch,
            TrainConfig(**{**vars(cfg), "fingerprint": "x"}),
        )
    wider = torch.nn.Linear(5, 2)
    with pytest.raises(CheckpointMismatch, match="shapes differ"):
        train_loop(list(wider.parameters()), loss_fn, batch, cfg)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # the same configuration resumes (here the run was complete, so no step is left to run)
    again = train_loop(list(model.parameters()), loss_fn, batch, cfg)
    assert again.resumed_from == 20 and again.samples == 0


def test_fp16_with_a_gradient_scaler_learns_and_skips_overflowing_steps():
    model, batch, loss_fn = _problem()
    r = train_loop(list(model.parameters()), loss_fn, batch,
                   TrainConfig(steps=300, lr=0.05, precision="fp16", progress=False))  # fmt: skip
    assert r.losses[-1] < 1e-2 * r.losses[0]
    assert len(r.scales) == 300 and r.scales[0] == 2.0**16
    # the first steps' gradients times 2**16 overflow fp16 (max 65504): skipped, the scale halved each
    # time, and only those steps; most steps are taken
    assert len(r.skipped_steps) < 30
    for k in range(299):
        assert r.scales[k + 1] == (r.scales[k] / 2 if k in r.skipped_steps else r.scales[k])

    model, batch, loss_fn = _problem()
    before = [p.detach().clone() for p in model.parameters()]

    def exploding(b):  # 1e6 times the loss: its gradients, times the scale, overflow fp16's 65504
        return 1e6 * loss_fn(b)

    r = train_loop(list(model.parameters()), exploding, batch,
                   TrainConfig(steps=3, lr=0.05, precision="fp16", clip_norm=0.0, progress=False))  # fmt: skip
    assert r.skipped_steps == [0, 1, 2]
    assert r.scales == [2.0**16, 2.0**15, 2.0**14]  # every overflow halves the scale
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)
    )  # no step taken


def test_a_slow_on_step_probe_is_not_counted_in_the_throughput():
    model, batch, loss_fn = _problem()
    seen = []

    def probe(k):  # stands in for decoding the validation split at a budget
        seen.append(k)
        time.sleep(0.1)

    t0 = time.perf_counter()
    r = train_loop(list(model.parameters()), loss_fn, batch,
                   TrainConfig(steps=10, lr=0.05, progress=False), on_step=probe)  # fmt: skip
    elapsed = time.perf_counter() - t0
    assert seen == list(range(1, 11))
    assert r.on_step_seconds >= 1.0  # ten sleeps of 0.1 s, timed apart
    assert elapsed - r.seconds >= 1.0  # ... and none of them in the training time
    assert r.samples_per_second == pytest.approx(r.samples / r.seconds)


@pytest.mark.parametrize("field, value", [("lr", 0), ("lr", float("nan")), ("lr", float("inf")),
                                          ("lr", "0.1"), ("weight_decay", -0.1),
                                          ("weight_decay", float("nan")), ("clip_norm", float("nan")),
                                          ("clip_norm", -1.0), ("warmup_fraction", 1.0),
                                          ("warmup_fraction", float("nan")), ("warmup_fraction", -0.1)])  # fmt: skip
def test_bad_numbers_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(steps=1, **{field: value})


def test_config_validation():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(steps=1, lr=0)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(steps=1, precision="fp8")


def test_numpy_numbers_are_accepted():
    assert TrainConfig(steps=1, lr=np.float32(0.01), clip_norm=np.float64(1.0)).lr == pytest.approx(
        0.01
    )
