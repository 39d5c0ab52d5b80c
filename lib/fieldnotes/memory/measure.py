"""Measure what a real sharded training run holds: DeepSpeed ZeRO 0-3, PyTorch ZeRO-1 and FSDP.

A small BLOOM-style causal language model is trained for a few steps by ``world_size`` CPU processes
(gloo; see :mod:`fieldnotes.distributed`). After the last optimizer step each rank runs one more
forward and backward pass (the first micro-batch of a two-micro-batch accumulated step) and reads,
from the engine and optimizer objects, the tensors it holds in

- ``parameters``: the working weights (16-bit for DeepSpeed, fp32 for PyTorch's engines);
- ``gradients``: gradients being accumulated between micro-batches;
- ``master``: fp32 master weights kept by the optimizer (DeepSpeed's mixed precision only);
- ``moments``: Adam's first and second moments.

Tensors are counted by their storage (a flat buffer that many parameters view counts once, with
its padding), so "bytes" are bytes actually allocated. The formula column is
:func:`fieldnotes.memory.model_states` split into the same four parts; the peak resident set size
(RSS) of each rank is read from ``/proc/self/status`` (``VmHWM``, reset before each configuration).

Engines (the ``engines`` argument): ``deepspeed-0`` .. ``deepspeed-3`` (bf16 mixed precision, Adam,
K = 12), ``torch-zero1`` (DDP + ``ZeroRedundancyOptimizer``, fp32, K = 8) and ``torch-fsdp``
(FSDP2 ``fully_shard`` per block, fp32, K = 8).
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass

from fieldnotes.memory.zero import check_count, shard

ENGINES = ("deepspeed-0", "deepspeed-1", "deepspeed-2", "deepspeed-3", "torch-zero1", "torch-fsdp")
PARTS = ("parameters", "gradients", "master", "moments")

# ZeRO stage and bytes per parameter (weights, gradients, master, moments) of each engine
ENGINE_MODEL = {
    "deepspeed-0": (0, 2, 2, 4, 8),
    "deepspeed-1": (1, 2, 2, 4, 8),
    "deepspeed-2": (2, 2, 2, 4, 8),
    "deepspeed-3": (3, 2, 2, 4, 8),
    "torch-zero1": (1, 4, 4, 0, 8),
    "torch-fsdp": (3, 4, 4, 0, 8),
}


@dataclass(frozen=True)
class RunSpec:
    """What to train and how (sizes in tokens and model dimensions)."""

    hidden: int = 384
    layers: int = 8
    heads: int = 6
    vocab: int = 8000
    seq_len: int = 64
    micro_batch: int = 2
    steps: int = 2
    seed: int = 0
    lr: float = 1e-4

    def __post_init__(self):
        for name in ("hidden", "layers", "heads", "vocab", "seq_len", "micro_batch", "steps"):
            check_count(name, getattr(self, name), minimum=1)
        check_count("seed", self.seed, minimum=0)
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")


def small_bloom_config(spec: RunSpec):
    """The BLOOM config of the measured model (tied embeddings, no dropout)."""
    from transformers import BloomConfig

    return BloomConfig(
        vocab_size=spec.vocab,
        hidden_size=spec.hidden,
        n_layer=spec.layers,
        n_head=spec.heads,
        hidden_dropout=0.0,
        attention_dropout=0.0,
    )


# --- reading what is held ----------------------------------------------------------------------


def _local(t):
    """The local tensor of a DTensor (FSDP2), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def storage_bytes(tensors) -> tuple[int, int]:
    """(elements, bytes) of the distinct storages behind ``tensors`` (views count once)."""
    seen: dict[int, tuple[int, int]] = {}
    for t in tensors:
        if t is None:
            continue
        t = _local(t)
        if t.numel() == 0:
            continue
        st = t.untyped_storage()
        key = st.data_ptr()
        if key not in seen:
            seen[key] = (st.nbytes() // t.element_size(), st.nbytes())
    return sum(e for e, _ in seen.values()), sum(b for _, b in seen.values())


def _adam_moments(optimizer):
    """Every exp_avg / exp_avg_sq tensor in a torch optimizer's state."""
    return [
        t
        for state in optimizer.state.values()
        for key, t in state.items()
        if key in ("exp_avg", "exp_avg_sq")
    ]


def _tensors(value, depth: int = 0):
    import torch

    if torch.is_tensor(value):
        yield value
    elif depth < 2 and isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, depth + 1)
    elif depth < 2 and isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v, depth + 1)


def _held_deepspeed(engine, optimizer, stage: int) -> dict[str, list]:
    """The tensors a DeepSpeed engine holds, by part."""
    params = list(engine.module.parameters())
    if stage == 3:
        weights = [p.ds_tensor for p in params] + [p.data for p in params if p.data.numel()]
        grads = [p.grad for p in params]
        grads += list(_tensors(getattr(optimizer, "grad_partitions_flat_buffer", None)))
        grads += list(_tensors(getattr(optimizer, "averaged_gradients", None)))
        master = list(optimizer.fp32_partitioned_groups_flat)
    else:
        weights = [p.data for p in params]
        grads = [p.grad for p in params]
        for name in ("averaged_gradients", "all_grad_tensors", "grads_in_partition"):
            grads += list(_tensors(getattr(optimizer, name, None)))
        if stage == 0:
            master = list(_tensors(optimizer.fp32_groups))
        else:
            master = list(optimizer.single_partition_of_fp32_groups)
    held = {
        "parameters": weights,
        "gradients": grads,
        "master": master,
        "moments": _adam_moments(optimizer.optimizer),
    }
    n = engine.dp_world_size
    if stage == 3:
        # ZeRO-3 splits every parameter on its own into n equal (padded) pieces
        per_param = sum(shard(p.ds_numel, n) for p in params)
        why = "each parameter split into equal pieces, padded"
        held["explained"] = {
            "parameters": (2 * per_param, why),
            "gradients": (2 * per_param, why),
            "master": (4 * per_param, why),
            "moments": (8 * per_param, why),
        }
    elif stage in (1, 2):
        # the flat 16-bit buffer is padded to a multiple of alignment x n elements
        align = optimizer.nccl_start_alignment_factor * n
        flat = sum(shard(sum(p.numel() for p in g), align) * align for g in optimizer.bit16_groups)
        why = f"flat buffer padded to a multiple of {align} elements"
        held["explained"] = {
            "parameters": (2 * flat, why),
            "master": (4 * (flat // n), why),
            "moments": (8 * (flat // n), why),
        }
        if stage == 2:
            # between micro-batches ZeRO-2 keeps the whole gradient of every parameter that
            # overlaps this rank's partition, including the one(s) straddling its boundary
            overlap = sum(p.numel() for group in optimizer.params_in_partition for p in group)
            held["explained"]["gradients"] = (
                2 * overlap,
                "whole gradients of the parameters overlapping the partition",
            )
    return held


# --- the per-rank work -------------------------------------------------------------------------


def _peak_rss_reset() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _batches(spec: RunSpec, rank: int, n: int):
    import torch

    g = torch.Generator().manual_seed(spec.seed * 1000 + rank)
    return [
        torch.randint(0, spec.vocab, (spec.micro_batch, spec.seq_len), generator=g)
        for _ in range(n)
    ]


def _run_deepspeed(spec: RunSpec, stage: int, world_size: int):
    import deepspeed
    import torch
    from transformers import BloomForCausalLM

    torch.manual_seed(spec.seed)
    model = BloomForCausalLM(small_bloom_config(spec))
    config = {
        "train_micro_batch_size_per_gpu": spec.micro_batch,
        "gradient_accumulation_steps": 2,
        "bf16": {"enabled": True},
        "optimizer": {"type": "AdamW", "params": {"lr": spec.lr, "torch_adam": True}},
        "zero_optimization": {
            "stage": stage,
            "reduce_bucket_size": 5e6,
            "allgather_bucket_size": 5e6,
            "stage3_param_persistence_threshold": 0,
            "stage3_max_reuse_distance": 0,
            "stage3_prefetch_bucket_size": 0,
        },
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    engine, optimizer, _, _ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=config
    )
    batches = _batches(spec, engine.global_rank, 2 * spec.steps + 1)
    losses = []
    for i, x in enumerate(batches):
        loss = engine(input_ids=x, labels=x).loss
        engine.backward(loss)
        losses.append(float(loss))
        if i == len(batches) - 1:
            break  # measure in the middle of an accumulated step
        engine.step()
    held = _held_deepspeed(engine, optimizer, stage)
    return held, losses, (engine, optimizer, model)


def _run_torch(spec: RunSpec, kind: str, world_size: int):
    import torch
    import torch.distributed as dist
    from transformers import BloomForCausalLM

    torch.manual_seed(spec.seed)
    model = BloomForCausalLM(small_bloom_config(spec))
    rank = dist.get_rank()
    if kind == "torch-zero1":
        from torch.distributed.optim import ZeroRedundancyOptimizer
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(model)
        optimizer = ZeroRedundancyOptimizer(
            wrapped.parameters(), optimizer_class=torch.optim.AdamW, lr=spec.lr
        )
        inner = optimizer.optim
    else:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world_size,))
        for block in model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        wrapped = model
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr)
        inner = optimizer
    batches = _batches(spec, rank, 2 * spec.steps + 1)
    losses = []
    for i, x in enumerate(batches):
        loss = wrapped(input_ids=x, labels=x).loss / 2
        loss.backward()
        losses.append(float(loss) * 2)
        if i == len(batches) - 1:
            break
        if i % 2 == 1:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    params = list(model.parameters())
    held = {
        "parameters": [p.data if not hasattr(p, "to_local") else p.to_local() for p in params],
        "gradients": [p.grad for p in params],
        "master": [],
        "moments": _adam_moments(inner),
    }
    if kind == "torch-zero1":
        # ZeroRedundancyOptimizer gives each rank whole parameters, so shards are unequal
        owned = sum(p.numel() for group in inner.param_groups for p in group["params"])
        held["explained"] = {
            "moments": (8 * owned, "moments of the whole parameters this rank owns")
        }
    else:
        # FSDP2 splits every parameter along dim 0 into world_size chunks padded to equal length
        padded = sum(shard(p.shape[0], world_size) * (p.numel() // p.shape[0]) for p in params)
        why = "dim-0 chunks of every parameter, padded to equal length"
        local = sum(_local(p).numel() for p in params)
        held["explained"] = {
            "parameters": (4 * padded, why),
            "gradients": (4 * padded, why),
            "moments": (8 * local, "moments of the unpadded dim-0 chunks"),
        }
    return held, losses, (wrapped, optimizer, model)


def _one_configuration(spec: RunSpec, engine_name: str, rank: int, world_size: int) -> list[dict]:
    """Train one engine on this rank and return its rows (one per part)."""
    from transformers import BloomForCausalLM

    gc.collect()
    reset = _peak_rss_reset()
    rss_start = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    if engine_name.startswith("deepspeed-"):
        held, losses, keep = _run_deepspeed(spec, int(engine_name[-1]), world_size)
    else:
        held, losses, keep = _run_torch(spec, engine_name, world_size)
    counted = {part: storage_bytes(held[part]) for part in PARTS}
    explained = held.get("explained", {})
    peak = _rss_kib("VmHWM")
    rss_now = _rss_kib("VmRSS")
    seconds = time.perf_counter() - t0
    import torch

    with torch.device("meta"):
        n_params = sum(p.numel() for p in BloomForCausalLM(small_bloom_config(spec)).parameters())
    del keep, held
    gc.collect()
    stage, wb, gb, mb, ob = ENGINE_MODEL[engine_name]
    s = shard(n_params, world_size)
    formula = {
        "parameters": wb * (s if stage >= 3 else n_params),
        "gradients": gb * (s if stage >= 2 else n_params),
        "master": mb * (s if stage >= 1 else n_params),
        "moments": ob * (s if stage >= 1 else n_params),
    }
    rows = []
    for part in PARTS:
        elements, nbytes = counted[part]
        exp_bytes, why = explained.get(part, (formula[part], "formula"))
        rows.append(
            {
                "engine": engine_name,
                "stage": stage,
                "rank": rank,
                "part": part,
                "measured_elements": elements,
                "measured_bytes": nbytes,
                "formula_bytes": formula[part],
                "explained_bytes": exp_bytes,
                "explanation": why,
                "params": n_params,
                "peak_rss_MiB": peak / 1024,
                "rss_at_start_MiB": rss_start / 1024,
                "rss_at_measure_MiB": rss_now / 1024,
                "peak_rss_is_per_config": reset,
                "final_loss": losses[-1],
                "seconds": seconds,
            }
        )
    return rows


def _rank_job(rank: int, world_size: int, spec_dict: dict, engines: list[str]) -> list[dict]:
    """Body of one rank (module-level so that spawned processes can import it)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
    import deepspeed

    deepspeed.utils.logger.setLevel(logging.ERROR)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # "shm_comm_op built successfully"
        deepspeed.init_distributed(dist_backend="gloo", verbose=False)
    spec = RunSpec(**spec_dict)
    rows = []
    for name in engines:
        rows += _one_configuration(spec, name, rank, world_size)
    return rows


def measure_zero(
    spec: RunSpec | None = None,
    *,
    engines=ENGINES,
    world_size: int = 2,
    fresh_processes: bool = True,
    timeout_s: float = 1200.0,
    progress: bool = True,
):
    """Train the small model under each engine on ``world_size`` CPU ranks; formula vs measured.

    Returns a pandas DataFrame with one row per engine, rank and part: measured elements and bytes,
    the formula's bytes, their ratio, the peak RSS (MiB) and the last loss. With ``fresh_processes``
    each engine gets its own processes (clean peak RSS, ~10-20 s of start-up each); otherwise all
    engines run one after another in the same processes (faster; peak RSS then includes what the
    allocator kept from earlier engines).
    """
    import pandas as pd

    from fieldnotes.distributed import run_on_cpu_ranks

    spec = spec or RunSpec()
    if not isinstance(spec, RunSpec):
        raise TypeError(f"spec must be a RunSpec, got {type(spec).__name__}")
    engines = list(engines)
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        raise ValueError(f"engines must be a non-empty subset of {ENGINES}, got {engines!r}")
    world_size = check_count("world_size", world_size, minimum=1)
    groups = [[e] for e in engines] if fresh_processes else [engines]
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(groups), desc="sharded runs", unit="run")
    for group in groups:
        for per_rank in run_on_cpu_ranks(
            _rank_job, world_size, asdict(spec), group, timeout_s=timeout_s
        ):
            rows += per_rank
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    table = pd.DataFrame(rows)
    table["measured/formula"] = table["measured_bytes"] / table["formula_bytes"].where(
        table["formula_bytes"] > 0
    )
    return table


def summary_table(table):
    """One row per engine and rank: measured vs formula bytes for each part (MB = 10^6 bytes)."""
    out = table.copy()
    out["measured_MB"] = out["measured_bytes"] / 1e6
    out["formula_MB"] = out["formula_bytes"] / 1e6
    wide = out.pivot_table(
        index=["engine", "rank"],
        columns="part",
        values=["measured_MB", "formula_MB"],
        aggfunc="first",
        sort=False,
    )
    wide = wide.swaplevel(0, 1, axis=1).reindex(columns=list(PARTS), level=0)
    rss = out.groupby(["engine", "rank"], sort=False)["peak_rss_MiB"].first()
    wide[("peak RSS", "MiB")] = rss
    return wide


__all__ = [
    "ENGINES",
    "PARTS",
    "RunSpec",
    "measure_zero",
    "small_bloom_config",
    "storage_bytes",
    "summary_table",
]
