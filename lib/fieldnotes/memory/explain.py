"""Explain, from each engine's own layout rules, the bytes :mod:`fieldnotes.memory.held` counts.

Each ``explain_*`` function returns ``{part: Explained}`` for the parts whose held bytes differ from
the paper's formula for a named reason (padding, whole-parameter shards, ZeRO-2's straddling
gradients); the parts it leaves out are the formula itself. The numbers are computed from the
model's parameter shapes and the engine's configuration, not read from the tensors being explained.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldnotes.memory.zero import shard


@dataclass(frozen=True)
class Explained:
    """Bytes a part should hold and why they differ from the paper's formula."""

    nbytes: int
    why: str


def explain_deepspeed(engine, optimizer, stage: int) -> dict[str, Explained]:
    """What DeepSpeed's layout makes each part hold on this rank (bytes)."""
    params = list(engine.module.parameters())
    n = engine.dp_world_size
    if stage == 3:
        # ZeRO-3 splits every parameter on its own into n equal (padded) pieces (p.ds_numel:
        # the parameter's full size, DeepSpeed 0.19.8)
        per_param = sum(shard(p.ds_numel, n) for p in params)
        why = "each parameter split into equal pieces, padded"
        return {
            "parameters": Explained(2 * per_param, why),
            "gradients": Explained(2 * per_param, why),
            "master": Explained(4 * per_param, why),
            "moments": Explained(8 * per_param, why),
        }
    if stage == 0:
        return {}
    # the flat 16-bit buffer is padded to a multiple of alignment x n elements
    # (nccl_start_alignment_factor, bit16_groups: DeepSpeed 0.19.8's ZeRO-1/2 optimizer)
    align = optimizer.nccl_start_alignment_factor * n
    flat = sum(shard(sum(p.numel() for p in g), align) * align for g in optimizer.bit16_groups)
    why = f"flat buffer padded to a multiple of {align} elements"
    explained = {
        "parameters": Explained(2 * flat, why),
        "master": Explained(4 * (flat // n), why),
        "moments": Explained(8 * (flat // n), why),
    }
    if stage == 2:
        # between micro-batches ZeRO-2 keeps the whole gradient of every parameter that
        # overlaps this rank's partition (params_in_partition), including the one(s) straddling
        # its boundary
        overlap = sum(p.numel() for group in optimizer.params_in_partition for p in group)
        explained["gradients"] = Explained(
            2 * overlap, "whole gradients of the parameters overlapping the partition"
        )
    return explained


def explain_torch_zero1(optimizer) -> dict[str, Explained]:
    """ZeroRedundancyOptimizer gives each rank whole parameters, so its moment shards are unequal."""
    owned = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
    return {"moments": Explained(8 * owned, "moments of the whole parameters this rank owns")}


def explain_fsdp(model, world_size: int) -> dict[str, Explained]:
    """FSDP2 splits every parameter along dim 0 into world_size chunks padded to equal length."""
    from fieldnotes.memory.held import local_tensor

    params = list(model.parameters())
    padded = sum(shard(p.shape[0], world_size) * (p.numel() // p.shape[0]) for p in params)
    why = "dim-0 chunks of every parameter, padded to equal length"
    local = sum(local_tensor(p).numel() for p in params)
    return {
        "parameters": Explained(4 * padded, why),
        "gradients": Explained(4 * padded, why),
        "moments": Explained(8 * local, "moments of the unpadded dim-0 chunks"),
    }


__all__ = ["Explained", "explain_deepspeed", "explain_fsdp", "explain_torch_zero1"]
