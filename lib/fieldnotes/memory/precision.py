"""BF16 against FP16 on the CPU: the same small model trained in fp32, bf16 and fp16 (with and
without dynamic loss scaling), with what each 16-bit format loses.

Each mode trains a fresh copy of the same initial model on the same token batches with AdamW; the
16-bit modes use ``torch.autocast("cpu", dtype=...)`` (fp32 master weights, 16-bit compute), and
``fp16-scaled`` adds ``torch.amp.GradScaler("cpu")``, which multiplies the loss by a scale before
backward, skips the optimizer step when a gradient overflows to inf/NaN and halves the scale, and
doubles it after ``growth_interval`` clean steps.

What autocast keeps in fp32: the weights (the master copy), their ``.grad`` and AdamW's moments,
and the loss (transformers' fp32 log-softmax); only the operators autocast lists (matrix products,
attention) compute in 16-bit, so the 16-bit values are activations and the gradients flowing
between them, never a stored or communicated 16-bit gradient.

Per step: the loss, the scale, whether the step was skipped, and ``underflow``: of the parameter
gradient elements that an fp32 backward at the same weights and batch makes non-zero, the fraction
that this mode's backward makes exactly zero (fp16's smallest subnormal is 6e-8; bf16's is 9e-41).
"""

from __future__ import annotations

import math

MODES = ("fp32", "bf16", "fp16", "fp16-scaled")


def format_ranges():
    """Largest finite and smallest normal value of fp16, bf16 and fp32, read from ``torch.finfo``."""
    import pandas as pd
    import torch

    rows = {
        name: {
            "max": torch.finfo(dt).max,
            "smallest normal": torch.finfo(dt).tiny,
            "smallest subnormal": torch.finfo(dt).tiny * torch.finfo(dt).eps,
        }
        for name, dt in [
            ("float16", torch.float16),
            ("bfloat16", torch.bfloat16),
            ("float32", torch.float32),
        ]
    }
    return pd.DataFrame(rows).T


def counting_batches(spec, n: int) -> list:
    """``n`` micro-batches of learnable sequences: each row counts up by a fixed stride (mod the
    vocabulary) from a random start, so the next token follows from the current one."""
    import torch

    g = torch.Generator().manual_seed(spec.seed * 1000 + 7)
    steps = torch.arange(spec.seq_len)
    out = []
    for _ in range(n):
        start = torch.randint(0, spec.vocab, (spec.micro_batch, 1), generator=g)
        out.append((start + 3 * steps) % spec.vocab)
    return out


def _dtype(mode: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp16-scaled": torch.float16}.get(mode)


def _loss(model, x, mode: str):
    import torch

    dtype = _dtype(mode)
    if dtype is None:
        return model(input_ids=x, labels=x).loss
    with torch.autocast("cpu", dtype=dtype):
        return model(input_ids=x, labels=x).loss


def _grads(model) -> list:
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def _underflow(grads, reference) -> float:
    """Fraction of the reference's non-zero gradient elements that are exactly zero in ``grads``."""
    nonzero = sum(int((r != 0).sum()) for r in reference)
    lost = sum(int(((g == 0) & (r != 0)).sum()) for g, r in zip(grads, reference, strict=True))
    return lost / nonzero if nonzero else 0.0


def precision_run(spec, mode: str, *, steps: int, lr: float = 1e-3, growth_interval: int = 20):
    """Train ``spec``'s small BLOOM model for ``steps`` steps in ``mode``; one row per step.

    Runs on one thread (restored afterwards): a model this small is fastest there, and on a busy
    machine more threads mostly wait for each other.
    """
    from fieldnotes.memory.timecost import one_thread

    with one_thread():
        return _precision_run(spec, mode, steps=steps, lr=lr, growth_interval=growth_interval)


def _precision_run(spec, mode: str, *, steps: int, lr: float, growth_interval: int):
    import copy

    import pandas as pd
    import torch
    from transformers import BloomForCausalLM

    from fieldnotes.memory.runs import small_bloom_config
    from fieldnotes.memory.zero import check_count

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    steps = check_count("steps", steps, minimum=1)
    torch.manual_seed(spec.seed)
    model = BloomForCausalLM(small_bloom_config(spec))
    reference = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scaler = (
        torch.amp.GradScaler("cpu", growth_interval=growth_interval)
        if mode == "fp16-scaled"
        else None
    )
    rows = []
    for step, x in enumerate(counting_batches(spec, steps)):
        reference.load_state_dict(model.state_dict())
        reference.zero_grad(set_to_none=True)
        reference(input_ids=x, labels=x).loss.backward()
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(model, x, mode)
        scale = scaler.get_scale() if scaler is not None else 1.0
        (scaler.scale(loss) if scaler is not None else loss).backward()
        underflow = _underflow(_grads(model), _grads(reference))
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
            skipped = scaler.get_scale() < scale
        else:  # no scaler: every step is taken, inf/NaN gradients included
            skipped = False
            optimizer.step()
        value = float(loss.detach())
        rows.append(
            {
                "mode": mode,
                "step": step,
                "loss": value if math.isfinite(value) else math.nan,
                "scale": scale,
                "skipped": bool(skipped),
                "underflow": underflow,
            }
        )
    return pd.DataFrame(rows)


def precision_experiment(spec, *, steps: int, modes=MODES, lr: float = 1e-3, growth_interval: int = 20):
    """:func:`precision_run` for every mode in ``modes``, one table (same model, same batches);
    ``growth_interval``: clean steps before the scaler doubles its scale (GradScaler's default
    is 2000; a run shorter than it never sees the scale grow)."""
    from fieldnotes.memory.zero import check_count

    growth_interval = check_count("growth_interval", growth_interval, minimum=1)
    import pandas as pd

    modes = list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {modes!r}")
    return pd.concat(
        [precision_run(spec, m, steps=steps, lr=lr, growth_interval=growth_interval) for m in modes],
        ignore_index=True,
    )


__all__ = ["MODES", "counting_batches", "format_ranges", "precision_experiment", "precision_run"]
