"""Collect the tensors a sharded engine holds, by model-state part (reading the engine's objects).

Each ``held_*`` function returns ``{part: [tensors]}`` for the parts of
:data:`fieldnotes.memory.engines.PARTS` and ``buckets`` (preallocated communication buffers); :func:`storage_bytes` counts them by distinct storage, so
a flat buffer that many parameters view counts once, padding included. Explaining the counts is
:mod:`fieldnotes.memory.explain`'s job.

DeepSpeed attributes read here are not public API; they are those of DeepSpeed 0.19.8 (the
version the project pins), named where they are used.
"""

from __future__ import annotations


def local_tensor(t):
    """The local tensor of a DTensor (FSDP2), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def storage_bytes(tensors) -> tuple[int, int]:
    """(elements, bytes) of the distinct storages behind ``tensors`` (views count once)."""
    seen: dict[int, tuple[int, int]] = {}
    for t in tensors:
        if t is None:
            continue
        t = local_tensor(t)
        if t.numel() == 0:
            continue
        st = t.untyped_storage()
        key = st.data_ptr()
        if key not in seen:
            seen[key] = (st.nbytes() // t.element_size(), st.nbytes())
    return sum(e for e, _ in seen.values()), sum(b for _, b in seen.values())


def adam_moments(optimizer) -> list:
    """Every exp_avg / exp_avg_sq tensor in a torch optimizer's state."""
    return [
        t
        for state in optimizer.state.values()
        for key, t in state.items()
        if key in ("exp_avg", "exp_avg_sq")
    ]


def _tensors(value, depth: int = 0):
    """The tensors in a tensor, or a list/tuple/dict of them nested at most two deep."""
    import torch

    if torch.is_tensor(value):
        yield value
    elif depth < 2 and isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, depth + 1)
    elif depth < 2 and isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v, depth + 1)


def held_deepspeed(engine, optimizer, stage: int) -> dict[str, list]:
    """The tensors a DeepSpeed engine and its ZeRO optimizer hold, by part."""
    params = list(engine.module.parameters())
    if stage == 3:
        # DeepSpeed 0.19.8 stage 3: p.ds_tensor is the rank's 16-bit shard, p.data the gathered
        # weight while gathered; gradient partitions live in grad_partitions_flat_buffer and
        # averaged_gradients; fp32 master shards in fp32_partitioned_groups_flat
        weights = [p.ds_tensor for p in params] + [p.data for p in params if p.data.numel()]
        grads = [p.grad for p in params]
        grads += list(_tensors(getattr(optimizer, "grad_partitions_flat_buffer", None)))
        grads += list(_tensors(getattr(optimizer, "averaged_gradients", None)))
        master = list(optimizer.fp32_partitioned_groups_flat)
    else:
        # DeepSpeed 0.19.8 stages 0-2: gradients being accumulated sit in averaged_gradients,
        # all_grad_tensors or grads_in_partition; fp32 masters in fp32_groups (stage 0, the
        # bf16 optimizer) or single_partition_of_fp32_groups (ZeRO 1-2)
        weights = [p.data for p in params]
        grads = [p.grad for p in params]
        for name in ("averaged_gradients", "all_grad_tensors", "grads_in_partition"):
            grads += list(_tensors(getattr(optimizer, name, None)))
        if stage == 0:
            master = list(_tensors(optimizer.fp32_groups))
        else:
            master = list(optimizer.single_partition_of_fp32_groups)
    # the preallocated gradient buckets: ipg_buckets[dtype].buffer, one tensor at stage 3 and a
    # list of them at stages 1-2 (DeepSpeed 0.19.8); stage 0's bf16 optimizer has none
    buckets = [b.buffer for b in getattr(optimizer, "ipg_buckets", {}).values()]
    return {
        "parameters": weights,
        "gradients": grads,
        "master": master,
        "moments": adam_moments(optimizer.optimizer),
        "buckets": list(_tensors(buckets)),
    }


def held_torch(model, optimizer) -> dict[str, list]:
    """The tensors a PyTorch engine (DDP + ZeroRedundancyOptimizer, or FSDP2) holds, by part.

    ``optimizer`` is the torch optimizer that owns the Adam state (``ZeroRedundancyOptimizer.optim``
    for PyTorch's ZeRO-1).
    """
    params = list(model.parameters())
    return {
        "parameters": [local_tensor(p.data) for p in params],
        "gradients": [p.grad for p in params],
        "master": [],
        "moments": adam_moments(optimizer),
        "buckets": [],  # DDP's buckets are C++ objects; the tracker sees them as communication
    }


__all__ = ["adam_moments", "held_deepspeed", "held_torch", "local_tensor", "storage_bytes"]
