"""The post's attempts, one at a time, on a 7B model and one 40 GB GPU: what each saves and why.

Each attempt is a :func:`fieldnotes.memory.training_budget` setting; the table reports the GPU
bytes by kind in 10^9-byte GB and whether they fit.
"""

from __future__ import annotations

from fieldnotes.memory.budget import Part, training_budget
from fieldnotes.memory.zero import GB, check_count


def attempts_table(
    params: int,
    *,
    layers: int,
    hidden: int,
    heads: int,
    seq_len: int,
    micro_batch: int,
    lora_params: int,
    gpu_gb: float = 40.0,
    n_gpus_ddp: int = 4,
):
    """The post's sequence of attempts (fp32 -> mixed precision -> checkpointing -> LoRA -> DDP).

    Activations follow Korthikanti et al. for 16-bit activations and are doubled for fp32.
    Returns a pandas DataFrame with one row per attempt.
    """
    import pandas as pd

    params = check_count("params", params, minimum=1)
    lora_params = check_count("lora_params", lora_params, minimum=1)
    shape = {"seq_len": seq_len, "micro_batch": micro_batch, "hidden": hidden, "heads": heads}
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
        total = b.model_states + activations
        rows.append(
            {
                "attempt": name,
                "trainable params": b.trainable_params,
                "weights GB": b.weights / GB,
                "gradients GB": b.gradients / GB,
                "optimizer GB": b.optimizer_states / GB,
                "activations GB": activations / GB,
                "total GB": total / GB,
                f"fits {gpu_gb:g} GB": total <= gpu_gb * GB,
            }
        )
    return pd.DataFrame(rows)
