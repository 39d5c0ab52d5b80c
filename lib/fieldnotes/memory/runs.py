"""Train the small BLOOM-style model under one engine on this CPU rank, and trace one step.

Each rank trains ``RunSpec.steps`` optimizer steps of two accumulated micro-batches, then runs one
more step inside a :class:`~fieldnotes.memory.timeline.LiveBytes` tracker (forward, backward,
forward, backward, optimizer step). The model states are read (:mod:`~fieldnotes.memory.held`)
after the traced step's first backward, in the middle of gradient accumulation, where ZeRO-1 and
ZeRO-2 differ; the tracker's parts are labelled at the step's start, after each backward and after
the optimizer step.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass

from fieldnotes.memory.zero import check_count

MICRO_BATCHES = 2  # micro-batches accumulated per optimizer step
BUCKET_ELEMENTS = 5_000_000  # the run's reduce and all-gather bucket size, in elements
DEFAULT_BUCKET_ELEMENTS = 500_000_000  # DeepSpeed's default reduce_bucket_size (0.19.8)
DEFAULT_PERSISTENCE = 100_000  # DeepSpeed's default stage3_param_persistence_threshold (0.19.8)
# which ZeRO settings a run uses: the shard-friendly ones, DeepSpeed's defaults, or one at a time
ZERO_SETTINGS = ("shard-friendly", "default-buckets", "default-persistence", "deepspeed-default")


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
    zero_settings: str = "shard-friendly"

    def __post_init__(self):
        if self.zero_settings not in ZERO_SETTINGS:
            raise ValueError(
                f"zero_settings must be one of {ZERO_SETTINGS}, got {self.zero_settings!r}"
            )
        for name in ("hidden", "layers", "heads", "vocab", "seq_len", "micro_batch", "steps"):
            check_count(name, getattr(self, name), minimum=1)
        check_count("seed", self.seed, minimum=0)
        if (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, int | float)
            or not math.isfinite(self.lr)
            or self.lr <= 0
        ):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
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


def bucket_elements(spec: RunSpec) -> int:
    """The run's ``reduce_bucket_size`` (elements)."""
    if spec.zero_settings in ("default-buckets", "deepspeed-default"):
        return DEFAULT_BUCKET_ELEMENTS
    return BUCKET_ELEMENTS


def engine_settings(spec: RunSpec, engine: str) -> str:
    """The memory settings ``engine`` runs ``spec`` with, in words: DeepSpeed's bucket size and,
    at ZeRO-3, persistence (:func:`deepspeed_config`); PyTorch's engines have neither setting
    and run with their defaults (DDP's buckets under ``ZeroRedundancyOptimizer``; FSDP2's
    ``fully_shard`` per block and on the root)."""
    if engine.startswith("deepspeed-"):
        stage = int(engine.rsplit("-", 1)[1])
        words = f"DeepSpeed ZeRO-{stage}: {bucket_elements(spec):,}-element buckets"
        if stage == 3:
            default = spec.zero_settings in ("default-persistence", "deepspeed-default")
            words += (f", persistence threshold {DEFAULT_PERSISTENCE:,} (default)" if default
                      else ", persistence threshold 0")
        return words
    if engine == "torch-zero1":
        return "PyTorch DDP + ZeroRedundancyOptimizer: DDP's default buckets"
    if engine == "torch-fsdp":
        return "PyTorch FSDP2: fully_shard per block and on the root, defaults"
    raise ValueError(f"engine must be 'deepspeed-0'..'deepspeed-3', 'torch-zero1' or 'torch-fsdp', got {engine!r}")


def deepspeed_config(spec: RunSpec, stage: int) -> dict:
    """The DeepSpeed config of the measured run: bf16, AdamW, and ``spec.zero_settings``.

    The shard-friendly settings: ``stage3_param_persistence_threshold: 0`` and
    ``stage3_max_reuse_distance: 0`` make ZeRO-3 release every gathered parameter (DeepSpeed's
    defaults keep parameters under 1e5 elements gathered, and parameters reused soon), and
    5e6-element buckets keep communication buffers small beside this small model.
    ``"default-buckets"`` restores DeepSpeed's bucket sizes only, ``"default-persistence"`` its
    persistence, reuse and prefetch settings only, ``"deepspeed-default"`` both.
    """
    zero = {"stage": stage}
    if spec.zero_settings in ("shard-friendly", "default-persistence"):
        zero.update(reduce_bucket_size=BUCKET_ELEMENTS, allgather_bucket_size=BUCKET_ELEMENTS)
    if spec.zero_settings in ("shard-friendly", "default-buckets"):
        zero.update(
            stage3_param_persistence_threshold=0,
            stage3_max_reuse_distance=0,
            stage3_prefetch_bucket_size=0,
        )
    return {
        "train_micro_batch_size_per_gpu": spec.micro_batch,
        "gradient_accumulation_steps": MICRO_BATCHES,
        "bf16": {"enabled": True},
        "optimizer": {"type": "AdamW", "params": {"lr": spec.lr, "torch_adam": True}},
        "zero_optimization": zero,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def token_batches(spec: RunSpec, rank: int, n: int) -> list:
    """``n`` micro-batches of random token ids for ``rank`` (seeded by spec.seed and rank)."""
    import torch

    g = torch.Generator().manual_seed(spec.seed * 1000 + rank)
    return [
        torch.randint(0, spec.vocab, (spec.micro_batch, spec.seq_len), generator=g)
        for _ in range(n)
    ]


@dataclass
class TracedRun:
    """What one rank's run leaves: (elements, bytes) held per part mid-step, counted there (DeepSpeed
    later re-points ``p.grad`` at its buckets), the step's tracker, the losses and the objects."""

    counted: dict
    tracker: object
    losses: list
    keep: tuple  # engine, optimizer, model: for explaining the layout (explain.py)
    step_seconds: list  # wall-clock seconds of each untraced optimizer step before the traced one
    memtracker_peak: int | None = None  # PyTorch's MemTracker's peak bytes, when cross-checked


def _count(held: dict) -> dict:
    from fieldnotes.memory.engines import PARTS
    from fieldnotes.memory.held import storage_bytes

    return {part: storage_bytes(held[part]) for part in PARTS}


def _label_all(tracker, held: dict) -> None:
    for part, tensors in held.items():
        tracker.label(part, tensors)


def _memtracker(cross_check: bool, model, held: dict):
    """PyTorch's own tracker (``torch.distributed._tools.mem_tracker.MemTracker``, torch 2.13) for
    the traced step, or a do-nothing context. It counts the storages operators return and those
    given to ``track_external`` (here the model and every tensor the engine's objects hold), each
    from when it first sees it; a storage only ever read, never returned, it does not count."""
    import contextlib

    if not cross_check:
        return contextlib.nullcontext()
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(model, *[t for tensors in held.values() for t in tensors])
    return tracker


def _next_micro_batch(tracker) -> None:
    """MemTracker refuses a module's second forward in one context: clear its per-module
    statistics (its peak snapshot is kept) before each micro-batch after the first."""
    if hasattr(tracker, "reset_mod_stats"):
        tracker.reset_mod_stats()


def _memtracker_peak(tracker) -> int | None:
    """The peak total bytes a MemTracker saw on the CPU (None for the do-nothing context)."""
    import torch

    if not hasattr(tracker, "get_tracker_snapshot"):
        return None
    peak = tracker.get_tracker_snapshot("peak")
    return int(peak.get(torch.device("cpu"), {}).get("Total", 0))


def run_deepspeed(spec: RunSpec, stage: int, *, cross_check: bool = False) -> TracedRun:
    """Train under DeepSpeed ZeRO ``stage`` and trace the last optimizer step (``cross_check``:
    inside PyTorch's MemTracker as well)."""
    import deepspeed
    import torch
    from transformers import BloomForCausalLM

    from fieldnotes.memory.held import held_deepspeed
    from fieldnotes.memory.timeline import LiveBytes

    torch.manual_seed(spec.seed)
    model = BloomForCausalLM(small_bloom_config(spec))
    engine, optimizer, _, _ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=deepspeed_config(spec, stage)
    )
    batches = token_batches(spec, engine.global_rank, MICRO_BATCHES * (spec.steps + 1))
    warm, traced = batches[:-MICRO_BATCHES], batches[-MICRO_BATCHES:]
    losses, step_seconds = [], []
    for i, x in enumerate(warm):
        if i % MICRO_BATCHES == 0:
            t0 = time.perf_counter()
        loss = engine(input_ids=x, labels=x).loss
        engine.backward(loss)
        losses.append(float(loss))
        engine.step()
        if i % MICRO_BATCHES == MICRO_BATCHES - 1:
            step_seconds.append(time.perf_counter() - t0)
    gc.collect()  # the same collector state at every run's traced step
    # buckets are reduce_bucket_size elements of bf16 or (ZeRO-1's accumulator) fp32
    bucket = bucket_elements(spec)
    tracker = LiveBytes(bucket_nbytes=(2 * bucket, 4 * bucket))
    counted = {}
    check = _memtracker(cross_check, model, held_deepspeed(engine, optimizer, stage))
    with tracker, check:
        _label_all(tracker, held_deepspeed(engine, optimizer, stage))
        for i, x in enumerate(traced):
            _next_micro_batch(check)
            tracker.start_phase("forward")
            loss = engine(input_ids=x, labels=x).loss
            tracker.start_phase("backward")
            engine.backward(loss)
            losses.append(float(loss))
            snapshot = held_deepspeed(engine, optimizer, stage)
            _label_all(tracker, snapshot)
            if i == 0:
                counted = _count(snapshot)
                engine.step()  # not a boundary: DeepSpeed only counts the micro-batch
            else:
                tracker.start_phase("optimizer")
                engine.step()
        _label_all(tracker, held_deepspeed(engine, optimizer, stage))
    return TracedRun(counted, tracker, losses, (engine, optimizer, model), step_seconds,
                     _memtracker_peak(check))


def _accumulating(wrapped, kind: str, i: int):
    """The context a DDP user writes around micro-batch ``i``'s forward and backward: DDP's
    ``no_sync()`` on every micro-batch but the last of a step, so gradients are all-reduced once
    per step. FSDP2 is left reducing every micro-batch (its default): with
    ``set_requires_gradient_sync(False)`` it would keep every unsharded gradient until the last
    micro-batch, trading the memory sharding saves for less communication."""
    import contextlib

    if kind == "torch-zero1" and i % MICRO_BATCHES != MICRO_BATCHES - 1:
        return wrapped.no_sync()
    return contextlib.nullcontext()


def run_torch(spec: RunSpec, kind: str, world_size: int, *, cross_check: bool = False) -> TracedRun:
    """Train under PyTorch's ``torch-zero1`` (DDP + ZeroRedundancyOptimizer) or ``torch-fsdp``
    (``cross_check``: trace inside PyTorch's MemTracker as well)."""
    import torch
    import torch.distributed as dist
    from transformers import BloomForCausalLM

    from fieldnotes.memory.held import held_torch
    from fieldnotes.memory.timeline import LiveBytes

    torch.manual_seed(spec.seed)
    model = BloomForCausalLM(small_bloom_config(spec))
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
    batches = token_batches(spec, dist.get_rank(), MICRO_BATCHES * (spec.steps + 1))
    warm, traced = batches[:-MICRO_BATCHES], batches[-MICRO_BATCHES:]
    losses, step_seconds = [], []

    for i, x in enumerate(warm):
        if i % MICRO_BATCHES == 0:
            t0 = time.perf_counter()
        with _accumulating(wrapped, kind, i):
            loss = wrapped(input_ids=x, labels=x).loss / MICRO_BATCHES
            loss.backward()
        losses.append(float(loss) * MICRO_BATCHES)
        if i % MICRO_BATCHES == MICRO_BATCHES - 1:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step_seconds.append(time.perf_counter() - t0)
    gc.collect()  # the same collector state at every run's traced step
    tracker = LiveBytes()
    counted = {}
    check = _memtracker(cross_check, model, held_torch(model, inner))
    with tracker, check:
        _label_all(tracker, held_torch(model, inner))
        for i, x in enumerate(traced):
            _next_micro_batch(check)
            with _accumulating(wrapped, kind, i):
                tracker.start_phase("forward")
                loss = wrapped(input_ids=x, labels=x).loss / MICRO_BATCHES
                tracker.start_phase("backward")
                loss.backward()
            losses.append(float(loss) * MICRO_BATCHES)
            snapshot = held_torch(model, inner)
            _label_all(tracker, snapshot)
            if i == 0:
                counted = _count(snapshot)
        tracker.start_phase("optimizer")
        optimizer.step()
        _label_all(tracker, held_torch(model, inner))
        optimizer.zero_grad(set_to_none=True)
    return TracedRun(counted, tracker, losses, (wrapped, optimizer, model), step_seconds,
                     _memtracker_peak(check))


__all__ = [
    "BUCKET_ELEMENTS",
    "DEFAULT_BUCKET_ELEMENTS",
    "DEFAULT_PERSISTENCE",
    "ZERO_SETTINGS",
    "bucket_elements",
    "MICRO_BATCHES",
    "RunSpec",
    "TracedRun",
    "deepspeed_config",
    "engine_settings",
    "run_deepspeed",
    "run_torch",
    "small_bloom_config",
    "token_batches",
]
