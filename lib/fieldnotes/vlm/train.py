"""The training loop: AdamW, warm-up + cosine schedule, gradient clipping, bf16 autocast on the
parameters' device, safetensors checkpoints and exact resume.

Batches are a pure function of (seed, step) and the RNG is reseeded at every step (with
``derive_seed(seed, "step <k>")``), so a run that is killed and resumed from its last checkpoint
reaches the same weights as one that was not.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fieldnotes.vlm.seeds import derive_seed


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings (learning rate per step, steps, clip norm, switches)."""

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    clip_norm: float = 1.0
    bf16: bool = False
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")


@dataclass
class TrainResult:
    """Losses per step, the number of samples seen, and the wall time spent in this process (s)."""

    losses: list[float] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0
    resumed_from: int = 0

    @property
    def samples_per_second(self) -> float:
        """Training throughput in samples per second (this process only)."""
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def cosine_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _named(params) -> dict[str, object]:
    return {f"p{i}": p for i, p in enumerate(params)}


def save_checkpoint(path: str | Path, params, optimizer, step: int, losses: list[float]) -> None:
    """Write trainable parameters, AdamW state, the step and the losses to one safetensors file (atomic)."""
    import torch
    from safetensors.torch import save_file

    tensors = {k: p.detach().contiguous().clone() for k, p in _named(params).items()}
    for i, p in enumerate(params):
        for k, v in optimizer.state.get(p, {}).items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"opt.{i}.{k}"] = t.detach().contiguous().clone()
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"step": str(step), "losses": json.dumps(losses)})
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, params, optimizer) -> tuple[int, list[float]]:
    """Restore parameters and AdamW state saved by ``save_checkpoint``; returns (step, losses)."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
        with torch.no_grad():
            for k, p in _named(params).items():
                if k not in keys:
                    raise ValueError(
                        f"checkpoint {path} has no tensor {k}; it was saved for other parameters"
                    )
                t = f.get_tensor(k)
                if t.shape != p.shape:
                    raise ValueError(
                        f"checkpoint {path}: {k} has shape {tuple(t.shape)}, expected {tuple(p.shape)}"
                    )
                p.copy_(t)
        for i, p in enumerate(params):
            state = {k.split(".", 2)[2]: f.get_tensor(k) for k in keys if k.startswith(f"opt.{i}.")}
            if state:
                optimizer.state[p] = state
    return int(meta["step"]), json.loads(meta["losses"])


def autocast_device_type(params) -> str:
    """The device type ("cpu", "cuda", ...) autocast must use for ``params``; they must share one."""
    types = {p.device.type for p in params}
    if len(types) != 1:
        raise ValueError(f"params must live on one device type, got {sorted(types)}")
    return types.pop()


def train_loop(
    params: list,
    loss_fn: Callable,
    batch_fn: Callable[[int], dict],
    cfg: TrainConfig,
    desc: str = "train",
    stop_after: int | None = None,
) -> TrainResult:
    """Run ``cfg.steps`` AdamW steps of ``loss_fn(batch_fn(step))`` on ``params``; resume if a checkpoint exists.

    ``stop_after`` ends the process-local run after that many steps by raising ``KeyboardInterrupt``
    (a stand-in for a killed job, used by the tests).
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("params has no trainable tensors")
    device_type = autocast_device_type(params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, int(cfg.warmup_fraction * cfg.steps))
    result = TrainResult()
    start = 0
    ckpt = Path(cfg.checkpoint_dir) / "last.safetensors" if cfg.checkpoint_dir else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if ckpt.exists():
            start, result.losses = load_checkpoint(ckpt, params, opt)
            result.resumed_from = start
    bar = tqdm(
        range(start, cfg.steps), desc=desc, disable=not cfg.progress, leave=False, mininterval=1.0
    )
    t0 = time.perf_counter()
    done_here = 0
    for step in bar:
        torch.manual_seed(derive_seed(cfg.seed, f"step {step}"))
        batch = batch_fn(step)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * cosine_factor(step, cfg.steps, warmup)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        if cfg.clip_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
        opt.step()
        result.losses.append(float(loss.detach()))
        first = next(iter(batch.values()))
        result.samples += int(first.shape[0])
        done_here += 1
        if ckpt is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            save_checkpoint(ckpt, params, opt, step + 1, result.losses)
        if stop_after is not None and done_here >= stop_after:
            raise KeyboardInterrupt(f"stopped after {done_here} steps (step {step + 1})")
    result.seconds = time.perf_counter() - t0
    return result
