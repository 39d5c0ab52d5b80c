"""Training loop: schedule, learning, checkpoint round trip, kill-and-resume reaches the same weights."""

import math

import numpy as np
import pytest
import torch

from fieldnotes.vlm.train import (
    TrainConfig,
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
    save_checkpoint(tmp_path / "c.safetensors", params, opt, 1, [0.5])
    model2, _, _ = _problem(seed=3)
    opt2 = torch.optim.AdamW(list(model2.parameters()))
    step, losses = load_checkpoint(tmp_path / "c.safetensors", list(model2.parameters()), opt2)
    assert (step, losses) == (1, [0.5])
    assert all(torch.equal(a, b) for a, b in zip(params, model2.parameters(), strict=True))
    assert torch.equal(
        opt.state[params[0]]["exp_avg"], opt2.state[list(model2.parameters())[0]]["exp_avg"]
    )


def test_killed_run_resumes_to_identical_weights(tmp_path):
    model, batch, loss_fn = _problem()
    full = train_loop(
        list(model.parameters()), loss_fn, batch, TrainConfig(steps=40, lr=0.05, progress=False)
    )
    reference = [p.detach().clone() for p in model.parameters()]

    model, batch, loss_fn = _problem()
    cfg = TrainConfig(
        steps=40, lr=0.05, progress=False, checkpoint_dir=str(tmp_path), checkpoint_every=10
    )
    with pytest.raises(KeyboardInterrupt):
        train_loop(
            list(model.parameters()), loss_fn, batch, cfg, stop_after=25
        )  # dies after step 25
    model, batch, loss_fn = _problem(seed=99)  # a fresh process: different initial weights
    resumed = train_loop(list(model.parameters()), loss_fn, batch, cfg)
    assert resumed.resumed_from == 20
    assert resumed.losses == full.losses
    assert all(torch.equal(a, b) for a, b in zip(reference, model.parameters(), strict=True))


def test_config_validation():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(steps=1, lr=0)
