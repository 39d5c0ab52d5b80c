"""The post's attempts, one at a time, on a 7B model and one 40 GB GPU: what each saves and why.

Each attempt is a :func:`fieldnotes.memory.training_budget` setting; the table reports the GPU
bytes by kind in 10^9-byte GB and whether they fit.
"""

from __future__ import annotations

from fieldnotes.memory.budget import Part, training_budget
from fieldnotes.memory.zero import GB, GiB, check_count

A100_40GB = 40 * GiB / GB  # an "A100 40GB" holds 40 GiB: 42.9 GB of 10^9 bytes


def attempts_table(
    params: int,
    *,
    layers: int,
    hidden: int,
    heads: int,
    seq_len: int,
    micro_batch: int,
    lora_params: int,
    gpu_gb: float = A100_40GB,
    n_gpus_ddp: int = 4,
    vocab: int = 0,
):
    """The post's sequence of attempts (fp32 -> mixed precision -> checkpointing -> LoRA -> DDP).

    Activations follow Korthikanti et al. for 16-bit activations and are doubled for fp32; the
    total includes the budget's working memory (the layer recomputed under checkpointing and,
    with ``vocab``, the logits the loss keeps).
    ``gpu_gb`` is in 10^9-byte GB. Returns a pandas DataFrame with one row per attempt.
    """
    import pandas as pd

    params = check_count("params", params, minimum=1)
    lora_params = check_count("lora_params", lora_params, minimum=1)
    shape = {"seq_len": seq_len, "micro_batch": micro_batch, "hidden": hidden, "heads": heads,
             "vocab": vocab}
    full = [Part("language model", params, "trained")]
    lora = [Part("language model", params, "lora", lora_params=lora_params)]
    settings = [
        ("fp32 Adam, one GPU", full, "fp32 (Adam)", "none", 1, 2),
        ("+ mixed precision (bf16)", full, "bf16 mixed (Adam)", "none", 1, 1),
        ("+ gradient checkpointing", full, "bf16 mixed (Adam)", "full", 1, 1),
        ("+ LoRA, no checkpointing", lora, "bf16 mixed (Adam)", "none", 1, 1),
        ("+ LoRA + checkpointing", lora, "bf16 mixed (Adam)", "full", 1, 1),
        (
            f"full fine-tune, DDP on {n_gpus_ddp} GPUs",
            full,
            "bf16 mixed (Adam)",
            "full",
            n_gpus_ddp,
            1,
        ),
    ]
    rows = []
    for name, parts, precision, recompute, n, act_factor in settings:
        b = training_budget(
            parts,
            stage=0,
            n_gpus=n,
            precision=precision,
            activation_layers=layers,
            recompute=recompute,
            **shape,
        )
        activations = act_factor * b.activations
        total = b.model_states + activations + b.working
        rows.append(
            {
                "attempt": name,
                "trainable params": b.trainable_params,
                "weights GB": b.weights / GB,
                "gradients GB": b.gradients / GB,
                "optimizer GB": b.optimizer_states / GB,
                "activations GB": activations / GB,
                "total GB": total / GB,
                "fits GPU": total <= gpu_gb * GB,
            }
        )
    return pd.DataFrame(rows)


def largest_micro_batch(params: int, attempt: str, *, gpu_gb: float = A100_40GB, limit: int = 4096,
                        **shape) -> int:
    """The largest micro-batch at which :func:`attempts_table`'s row ``attempt`` fits ``gpu_gb``
    (0 if not even one sample fits); ``shape`` holds its other keywords except ``micro_batch``."""
    if "micro_batch" in shape:
        raise TypeError("largest_micro_batch searches the micro_batch; do not pass it")
    limit = check_count("limit", limit, minimum=1)

    def fits(b: int) -> bool:
        table = attempts_table(params, micro_batch=b, gpu_gb=gpu_gb, **shape).set_index("attempt")
        if attempt not in table.index:
            raise ValueError(f"attempt must be one of {list(table.index)}, got {attempt!r}")
        return bool(table.loc[attempt, "fits GPU"])

    return _largest_fitting(fits, limit)


def _largest_fitting(fits, limit: int) -> int:
    """The largest b in 1..limit with fits(b) (0 if none), for fits that stays False once False."""
    if not fits(1):
        return 0
    lo, hi = 1, limit  # fits(lo); memory grows with the micro-batch
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def plan_micro_batches(plans, *, settings=((0, 1), (3, 4), (3, 8)), gpu_gb: float = A100_40GB,
                       limit: int = 4096, **activations):
    """The largest micro-batch of each training plan (name -> list of :class:`Part`) whose budget
    (:func:`fieldnotes.memory.training_budget`, ``activations`` its other keywords except
    ``micro_batch``) fits ``gpu_gb`` at each (ZeRO stage, GPUs) in ``settings``; 0 where not even
    one sample fits."""
    import pandas as pd

    if "micro_batch" in activations:
        raise TypeError("plan_micro_batches searches the micro_batch; do not pass it")
    limit = check_count("limit", limit, minimum=1)
    rows = {}
    for plan, parts in plans.items():
        row = {}
        for stage, n in settings:
            def fits(b, stage=stage, n=n, parts=parts):
                budget = training_budget(parts, stage=stage, n_gpus=n, micro_batch=b, **activations)
                return budget.total <= gpu_gb * GB

            label = "1 GPU" if n == 1 and stage == 0 else f"ZeRO-{stage} x{n}"
            row[label] = _largest_fitting(fits, limit)
        rows[plan] = row
    return pd.DataFrame(rows).T


def plans_table(plans, *, settings=((0, 1), (3, 4), (3, 8)), gpu_gb: float = A100_40GB,
                **activations):
    """GB per GPU of each training plan (name -> list of :class:`Part`) at each (ZeRO stage, GPUs)
    in ``settings``, with a ``fits`` column per setting; ``activations`` go to
    :func:`fieldnotes.memory.training_budget` (layers as ``activation_layers``, shape, recompute)."""
    import pandas as pd

    rows = []
    for plan, parts in plans.items():
        row = {"plan": plan, "trainable": sum(p.trainable for p in parts)}
        for stage, n in settings:
            b = training_budget(parts, stage=stage, n_gpus=n, **activations)
            label = "1 GPU" if n == 1 and stage == 0 else f"ZeRO-{stage} x{n}"
            row[f"{label} GB"] = b.total / GB
            row[f"{label} fits"] = b.total <= gpu_gb * GB
        rows.append(row)
    return pd.DataFrame(rows).set_index("plan")
