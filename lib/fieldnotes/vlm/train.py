"""The training loop: AdamW, warm-up + cosine schedule, gradient clipping, FP32 / BF16 / FP16
autocast on the parameters' device (FP16 with a dynamic gradient scaler), safetensors checkpoints
and exact resume.

Batches are a pure function of (seed, step) and the RNG is reseeded at every step (with
``derive_seed(seed, "step <k>")``), so a run that is killed and resumed from its last checkpoint
reaches the same weights as one that was not. Every checkpoint stores the hash of the
configuration that wrote it (``config_fingerprint``: the optimiser settings, the caller's
``TrainConfig.fingerprint`` and the trainable parameters' shapes); a checkpoint written by another
configuration is refused with ``CheckpointMismatch`` instead of being resumed. A resumed run reports
the step it continued from (``TrainResult.resumed_from`` and a log line on ``fieldnotes.vlm.train``).

FP16 keeps FP32 master weights: the forward pass runs under ``torch.autocast(dtype=float16)`` and the
loss is multiplied by the scaler's scale before ``backward``; a step whose gradients overflow (inf or
NaN after unscaling) is skipped and the scale halved, and after ``growth_interval`` clean steps it
doubles (``torch.amp.GradScaler``, which exists for the CPU too). ``TrainResult.scales`` and
``TrainResult.skipped_steps`` record both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fieldnotes.vlm.seeds import derive_seed

log = logging.getLogger(__name__)

#: Training precisions: autocast dtype of the forward pass (None: plain FP32).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def _is_real(value: object) -> bool:
    """A real number (numpy's included), not a bool or a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings (learning rate per step, steps, clip norm, precision, switches).

    ``fingerprint`` names what is being trained (the caller's model and data settings); it enters the
    checkpoint's config hash, so a checkpoint of another model or data set is never resumed.
    ``checkpoint_dir``, ``checkpoint_every`` and ``progress`` do not: they do not change the result.
    """

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    clip_norm: float = 1.0
    precision: str = "fp32"
    seed: int = 0
    fingerprint: str = ""
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if not (_is_real(self.lr) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        for name in ("weight_decay", "clip_norm"):
            v = getattr(self, name)
            if not (_is_real(v) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (_is_real(self.warmup_fraction) and 0 <= self.warmup_fraction < 1):
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


class CheckpointMismatch(ValueError):
    """A checkpoint written by another training configuration than the one asked to resume it."""


def config_fingerprint(cfg: TrainConfig, params) -> dict:
    """What a checkpoint must match to be resumed: every setting that changes the result and the
    trainable parameters' shapes (JSON-ready)."""
    settings = {k: getattr(cfg, k) for k in ("steps", "lr", "weight_decay", "warmup_fraction",
                                             "clip_norm", "precision", "seed", "fingerprint")}  # fmt: skip
    return {**settings, "parameter_shapes": [list(p.shape) for p in params]}


def config_hash(config: dict) -> str:
    """SHA-256 (hex) of a ``config_fingerprint`` dict."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainResult:
    """Losses per step, the number of samples seen, the wall time spent training in this process (s;
    the ``on_step`` callbacks excluded), the wall time spent in those callbacks (s; e.g. decoding
    the validation split at a budget), the step a resumed run continued from (0: started fresh), and
    for FP16 the gradient scale in force at every step and the steps skipped because their gradients
    overflowed (empty lists otherwise)."""

    losses: list[float] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0
    on_step_seconds: float = 0.0
    resumed_from: int = 0
    scales: list[float] = field(default_factory=list)
    skipped_steps: list[int] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        """Training throughput in samples per second (this process only; time spent in ``on_step``
        is not counted, so an evaluation along the run does not lower it)."""
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def cosine_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _named(params) -> dict[str, object]:
    return {f"p{i}": p for i, p in enumerate(params)}


def save_checkpoint(path: str | Path, params, optimizer, step: int, history: dict[str, list],
                    config: dict, scaler=None) -> None:  # fmt: skip
    """Write trainable parameters, AdamW state, the step, the per-step ``history`` (losses, scales,
    skipped steps), the writing ``config`` (a ``config_fingerprint``) with its hash, and the FP16
    scaler's state when given, to one safetensors file (atomically: a temporary file renamed)."""
    import torch
    from safetensors.torch import save_file

    tensors = {k: p.detach().contiguous().clone() for k, p in _named(params).items()}
    for i, p in enumerate(params):
        for k, v in optimizer.state.get(p, {}).items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"opt.{i}.{k}"] = t.detach().contiguous().clone()
    meta = {"step": str(step), "history": json.dumps(history), "config": json.dumps(config),
            "config_hash": config_hash(config)}  # fmt: skip
    if scaler is not None:
        meta["scaler"] = json.dumps(scaler.state_dict())
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _refuse_other_config(path: Path, meta: dict, config: dict) -> None:
    stored = meta.get("config_hash")
    if stored == config_hash(config):
        return
    if stored is None:
        raise CheckpointMismatch(f"checkpoint {path} stores no config hash, so it cannot be shown to "
                                 "belong to this run; delete it or choose another checkpoint_dir")  # fmt: skip
    theirs = json.loads(meta.get("config", "{}"))
    differ = sorted(k for k in {*theirs, *config} if theirs.get(k) != config.get(k))
    shown = ", ".join(f"{k}: {theirs.get(k)!r} in the checkpoint, {config.get(k)!r} now"
                      for k in differ if k != "parameter_shapes")  # fmt: skip
    if "parameter_shapes" in differ:
        shown = ", ".join(filter(None, [shown, "the trainable parameters' shapes differ"]))
    raise CheckpointMismatch(f"checkpoint {path} was written by another configuration (config hash "
                             f"{stored[:12]}, this run {config_hash(config)[:12]}; {shown}); it is not "
                             "resumed: delete it or choose another checkpoint_dir")  # fmt: skip


def load_checkpoint(path: str | Path, params, optimizer, config: dict,
                    scaler=None) -> tuple[int, dict[str, list]]:  # fmt: skip
    """Restore parameters, AdamW state (and the FP16 scaler's state) saved by ``save_checkpoint``;
    returns (step, history). Raises ``CheckpointMismatch`` before touching anything when the
    checkpoint was written by a configuration whose ``config_fingerprint`` differs from ``config``."""
    import torch
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        _refuse_other_config(path, meta, config)
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
    if scaler is not None:
        if "scaler" not in meta:
            raise CheckpointMismatch(
                f"checkpoint {path} has no gradient-scaler state for this FP16 run"
            )
        scaler.load_state_dict(json.loads(meta["scaler"]))
    return int(meta["step"]), json.loads(meta["history"])


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
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Run ``cfg.steps`` AdamW steps of ``loss_fn(batch_fn(step))`` on ``params``; resume if a checkpoint exists.

    ``on_step(k)`` is called after the k-th step (k counts from 1), e.g. to evaluate the model at
    budgets along one run; since the RNG is reseeded at every step, what it does (without
    touching the parameters) cannot change the training, and its wall time is kept apart
    (``TrainResult.on_step_seconds``), so it cannot change the reported throughput either. ``stop_after`` ends the process-local
    run after that many steps by raising ``KeyboardInterrupt`` (a stand-in for a killed job, used
    by the tests).
    """
    import torch
    from tqdm.auto import tqdm

    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("params has no trainable tensors")
    device_type = autocast_device_type(params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.precision]
    scaler = torch.amp.GradScaler(device_type) if cfg.precision == "fp16" else None
    config = config_fingerprint(cfg, params)
    warmup = max(1, int(cfg.warmup_fraction * cfg.steps))
    result = TrainResult()
    start = 0
    ckpt = Path(cfg.checkpoint_dir) / "last.safetensors" if cfg.checkpoint_dir else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if ckpt.exists():
            start, history = load_checkpoint(ckpt, params, opt, config, scaler)
            result.losses, result.scales = history["losses"], history["scales"]
            result.skipped_steps = history["skipped_steps"]
            result.resumed_from = start
            log.info("%s: resumed from step %d of %d (%s)", desc, start, cfg.steps, ckpt)
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
        with torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(batch)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.float().backward()
            if cfg.clip_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
            opt.step()
        else:
            scale = scaler.get_scale()
            scaler.scale(loss.float()).backward()
            scaler.unscale_(opt)
            if cfg.clip_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
            scaler.step(opt)  # skipped when the unscaled gradients hold inf or NaN
            scaler.update()
            result.scales.append(scale)
            if scaler.get_scale() < scale:
                result.skipped_steps.append(step)
        result.losses.append(float(loss.detach()))
        first = next(iter(batch.values()))
        result.samples += int(first.shape[0])
        done_here += 1
        if ckpt is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            history = {"losses": result.losses, "scales": result.scales,
                       "skipped_steps": result.skipped_steps}  # fmt: skip
            save_checkpoint(ckpt, params, opt, step + 1, history, config, scaler)
        if on_step is not None:
            t_probe = time.perf_counter()
            on_step(step + 1)
            result.on_step_seconds += time.perf_counter() - t_probe
        if stop_after is not None and done_here >= stop_after:
            raise KeyboardInterrupt(f"stopped after {done_here} steps (step {step + 1})")
    result.seconds = time.perf_counter() - t0 - result.on_step_seconds
    return result
