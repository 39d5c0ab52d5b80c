"""What the memory savings cost in time: recomputation's extra forward (measured on the CPU) and
ZeRO's communication per step (a bytes / bandwidth model, not a measurement).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from fractions import Fraction

RECOMPUTE_MODES = ("none", "full")


@contextlib.contextmanager
def one_thread():
    """Run the body with ``torch.set_num_threads(1)``, restoring the previous count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def recompute_step_seconds(spec, *, repeats: int = 5, warmup: int = 1):
    """Wall-clock seconds of one training step (forward, backward, AdamW) of ``spec``'s small BLOOM
    model in fp32 on one thread of this process, without and with full recomputation,
    interleaved; one row per mode and repeat (the first ``warmup`` steps of each mode are not
    reported)."""
    import pandas as pd
    import torch
    from transformers import BloomForCausalLM

    from fieldnotes.memory.runs import small_bloom_config, token_batches
    from fieldnotes.memory.zero import check_count

    repeats = check_count("repeats", repeats, minimum=1)
    warmup = check_count("warmup", warmup, minimum=0)
    models = {}
    for mode in RECOMPUTE_MODES:
        torch.manual_seed(spec.seed)
        model = BloomForCausalLM(small_bloom_config(spec))
        model.train()
        if mode == "full":
            model.config.use_cache = False  # recomputation keeps no key/value cache anyway
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        models[mode] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))
    batches = token_batches(spec, 0, warmup + repeats)
    with one_thread():
        rows = _timed_steps(models, batches, warmup)
    return pd.DataFrame(rows)


def _timed_steps(models: dict, batches: list, warmup: int) -> list[dict]:
    rows = []
    for i, x in enumerate(batches):
        for mode, (model, optimizer) in models.items():
            t0 = time.perf_counter()
            model(input_ids=x, labels=x).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - t0
            if i >= warmup:
                rows.append({"recompute": mode, "repeat": i - warmup, "seconds": seconds})
    return rows


def communication_seconds(params, *, stage, n_gpus, micro_batches, bytes_per_second) -> float:
    """Modelled seconds per optimizer step that a GPU spends sending ZeRO's collectives: 16-bit
    elements from :func:`~fieldnotes.memory.communication_elements` x 2 bytes / ``bytes_per_second``
    (ring collectives, no overlap with computation, no latency term)."""
    from fieldnotes.memory.zero import communication_elements

    ok = isinstance(bytes_per_second, numbers.Real) and not isinstance(bytes_per_second, bool)
    if not (ok and math.isfinite(bytes_per_second) and bytes_per_second > 0):
        raise ValueError(f"bytes_per_second must be a finite number > 0, got {bytes_per_second!r}")
    elements = communication_elements(
        params, stage=stage, n_gpus=n_gpus, micro_batches=micro_batches
    )
    return float(Fraction(2) * elements / Fraction(bytes_per_second))


__all__ = ["RECOMPUTE_MODES", "communication_seconds", "one_thread", "recompute_step_seconds"]
