"""The post's attempts, one at a time, on a 7B model and one 40 GB GPU: what each saves and why.

Each attempt is a :func:`fieldnotes.memory.training_budget` setting; the table reports the GPU
bytes by kind at the step's peak moment in 10^9-byte GB and whether they fit. Every verdict that a
setting fits leaves :data:`HEADROOM_GB` of the GPU for what no budget term counts.
"""

from __future__ import annotations

from fieldnotes.memory.budget import Part, training_budget
from fieldnotes.memory.zero import GB, GiB, check_count

A100_40GB = 40 * GiB / GB  # an "A100 40GB" holds 40 GiB: 42.9 GB of 10^9 bytes
# GB (10^9 bytes) a verdict leaves free for the CUDA context, cuBLAS's workspace and the caching
# allocator's reserved but unallocated blocks, which no budget term counts. Source: the chapter's
# one real GPU step (benchmarks/results/gpu_memory.json, BLOOMZ-7b1 on an H200) peaked at
# 145.49 GB of tensors on a 150.11 GB GPU and ran, so this much sufficed there (a test reads it
# back); it bounds that run's need from above, so verdicts err towards "does not fit".
HEADROOM_GB = 4.62


def usable_bytes(gpu_gb: float, headroom_gb: float = HEADROOM_GB) -> int:
    """Bytes of a ``gpu_gb``-GB GPU a budget may fill: its memory less ``headroom_gb`` (GB)."""
    import math

    for name, value in (("gpu_gb", gpu_gb), ("headroom_gb", headroom_gb)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number of GB, got {value!r}")
    if headroom_gb < 0 or gpu_gb <= headroom_gb:
        raise ValueError(
            f"gpu_gb must exceed headroom_gb >= 0, got gpu_gb={gpu_gb!r}, headroom_gb={headroom_gb!r}"
        )
    return int((gpu_gb - headroom_gb) * GB)


def attempts_table(
    params: int,
    *,
    layers: int,
    hidden: int,
    heads: int,
    seq_len: int,
    micro_batch: int,
    lora_params: int,
    lora_rank: int,
    gpu_gb: float = A100_40GB,
    headroom_gb: float = HEADROOM_GB,
    n_gpus_ddp: int = 4,
    vocab: int = 0,
    tied_params: int = 0,
    architecture: str = "bloom",
):
    """The post's sequence of attempts (fp32 -> mixed precision -> checkpointing -> LoRA -> DDP).

    Each row is :func:`fieldnotes.memory.training_budget` at its peak moment: activations are
    ``architecture``'s measured ones in the precision's dtype, and the working memory (with
    ``vocab`` the logits the loss keeps and their two fp32 gradients; the layer recomputed under
    checkpointing; DDP's gradient buckets; with ``tied_params`` the gradients of an embedding tied
    to the output head, in the full fine-tunes) is split into two columns, so that the byte columns add up
    to ``total GB``. ``gpu_gb`` is in 10^9-byte GB; "fits GPU" leaves ``headroom_gb`` of it free
    (:data:`HEADROOM_GB`). ``lora_rank`` sizes the LoRA rows' activations. Returns a pandas
    DataFrame, one row per attempt.
    """
    import pandas as pd

    params = check_count("params", params, minimum=1)
    lora_params = check_count("lora_params", lora_params, minimum=1)
    usable = usable_bytes(gpu_gb, headroom_gb)
    shape = {"seq_len": seq_len, "micro_batch": micro_batch, "hidden": hidden, "heads": heads,
             "vocab": vocab, "architecture": architecture}
    full = [Part("language model", params, "trained", tied_params=tied_params)]
    lora = [Part("language model", params, "lora", lora_params=lora_params, tied_params=tied_params,
                 lora_rank=lora_rank)]
    settings = [
        ("fp32 Adam, one GPU", full, "fp32 (Adam)", "none", 1),
        ("+ mixed precision (bf16)", full, "bf16 mixed (Adam)", "none", 1),
        ("+ gradient checkpointing", full, "bf16 mixed (Adam)", "full", 1),
        ("+ LoRA, no checkpointing", lora, "bf16 mixed (Adam)", "none", 1),
        ("+ LoRA + checkpointing", lora, "bf16 mixed (Adam)", "full", 1),
        (f"full fine-tune, DDP on {n_gpus_ddp} GPUs", full, "bf16 mixed (Adam)", "full", n_gpus_ddp),
    ]
    rows = []
    for name, parts, precision, recompute, n in settings:
        b = training_budget(
            parts,
            stage=0,
            n_gpus=n,
            precision=precision,
            activation_layers=layers,
            recompute=recompute,
            **shape,
        )
        at = b.at_peak()
        loss = at["logits"] + at["logit_gradient"]
        rows.append(
            {
                "attempt": name,
                "trainable params": b.trainable_params,
                "weights GB": b.weights / GB,
                "gradients GB": b.gradients / GB,
                "optimizer GB": b.optimizer_states / GB,
                "activations GB": at["activations"] / GB,
                "logits + loss backward GB": loss / GB,
                "other working GB": (b.working - loss) / GB,
                "total GB": b.total / GB,
                "peak at": b.peak_phase,
                "fits GPU": b.total <= usable,
            }
        )
    return pd.DataFrame(rows)


def largest_micro_batch(params: int, attempt: str, *, gpu_gb: float = A100_40GB,
                        headroom_gb: float = HEADROOM_GB, limit: int = 4096, **shape) -> int:
    """The largest micro-batch at which :func:`attempts_table`'s row ``attempt`` fits ``gpu_gb``
    less ``headroom_gb`` (0 if not even one sample fits); ``shape`` holds its other keywords
    except ``micro_batch``."""
    if "micro_batch" in shape:
        raise TypeError("largest_micro_batch searches the micro_batch; do not pass it")
    limit = check_count("limit", limit, minimum=1)

    def fits(b: int) -> bool:
        table = attempts_table(params, micro_batch=b, gpu_gb=gpu_gb, headroom_gb=headroom_gb,
                               **shape).set_index("attempt")
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
                       headroom_gb: float = HEADROOM_GB, limit: int = 4096, **activations):
    """The largest micro-batch of each training plan (name -> list of :class:`Part`) whose budget
    (:func:`fieldnotes.memory.training_budget`, ``activations`` its other keywords except
    ``micro_batch``) fits ``gpu_gb`` less ``headroom_gb`` at each (ZeRO stage, GPUs) in
    ``settings``; 0 where not even one sample fits."""
    import pandas as pd

    if "micro_batch" in activations:
        raise TypeError("plan_micro_batches searches the micro_batch; do not pass it")
    limit = check_count("limit", limit, minimum=1)
    usable = usable_bytes(gpu_gb, headroom_gb)
    rows = {}
    for plan, parts in plans.items():
        row = {}
        for stage, n in settings:
            def fits(b, stage=stage, n=n, parts=parts):
                budget = training_budget(parts, stage=stage, n_gpus=n, micro_batch=b, **activations)
                return budget.total <= usable

            label = "1 GPU" if n == 1 and stage == 0 else f"ZeRO-{stage} x{n}"
            row[label] = _largest_fitting(fits, limit)
        rows[plan] = row
    return pd.DataFrame(rows).T


def plans_table(plans, *, settings=((0, 1), (3, 4), (3, 8)), gpu_gb: float = A100_40GB,
                headroom_gb: float = HEADROOM_GB, **activations):
    """GB per GPU of each training plan (name -> list of :class:`Part`) at each (ZeRO stage, GPUs)
    in ``settings``, with a ``fits`` column per setting (``gpu_gb`` less ``headroom_gb``);
    ``activations`` go to
    :func:`fieldnotes.memory.training_budget` (layers as ``activation_layers``, shape, recompute)."""
    import pandas as pd

    usable = usable_bytes(gpu_gb, headroom_gb)
    rows = []
    for plan, parts in plans.items():
        row = {"plan": plan, "trainable": sum(p.trainable for p in parts)}
        for stage, n in settings:
            b = training_budget(parts, stage=stage, n_gpus=n, **activations)
            label = "1 GPU" if n == 1 and stage == 0 else f"ZeRO-{stage} x{n}"
            row[f"{label} GB"] = b.total / GB
            row[f"{label} fits"] = b.total <= usable
        rows.append(row)
    return pd.DataFrame(rows).set_index("plan")


def margin_text(total_bytes: int, gpu_gb: float, headroom_gb: float = HEADROOM_GB) -> str:
    """Words for how ``total_bytes`` sits against a ``gpu_gb``-GB GPU less ``headroom_gb``, in
    10^9-byte GB: "leaves X GB of the Y GB free beside the Z GB headroom" or "needs X GB more
    than the Y GB less the Z GB headroom"."""
    total = check_count("total_bytes", total_bytes, minimum=0)
    usable = usable_bytes(gpu_gb, headroom_gb)
    where = f"the {gpu_gb:.1f} GB"
    if total <= usable:
        return f"leaves {(usable - total) / GB:.1f} GB of {where} free beside the {headroom_gb:.2f} GB headroom"
    return f"needs {(total - usable) / GB:.1f} GB more than {where} less the {headroom_gb:.2f} GB headroom"


def lora_exercise_micro_batch(gpu_memory_gib: float = 40.0, seq_len: int = 512, lora_rank: int = 16,
                              headroom_gb: float = HEADROOM_GB) -> int:
    """The chapter's exercise 4: the largest micro-batch at which BLOOMZ-7b1 with LoRA of
    ``lora_rank`` on its attention matrices, without checkpointing, fits ``gpu_memory_gib`` GiB
    less ``headroom_gb`` GB (:func:`largest_micro_batch` on the attempts table, BLOOM's LoRA-layer
    activations and logits)."""
    from fieldnotes.memory.budget import lora_parameters
    from fieldnotes.memory.counting import (
        bloomz_7b1_config,
        count_parameters,
        largest_layer_parameters,
        linear_shapes,
    )

    bloomz = bloomz_7b1_config()
    lora = lora_parameters(linear_shapes(bloomz, targets=("query_key_value", "dense")), lora_rank)
    return largest_micro_batch(
        count_parameters(bloomz), "+ LoRA, no checkpointing", gpu_gb=gpu_memory_gib * GiB / GB,
        headroom_gb=headroom_gb, layers=bloomz.n_layer, hidden=bloomz.hidden_size,
        heads=bloomz.n_head, seq_len=seq_len, lora_params=lora, lora_rank=lora_rank, vocab=bloomz.vocab_size, tied_params=largest_layer_parameters(bloomz),
    )
