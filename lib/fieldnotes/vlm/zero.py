"""The DeepSpeed path: ZeRO-2 and ZeRO-3 JSON configs and a data-parallel run of the small VLM on
CPU processes (gloo, ``DS_ACCELERATOR=cpu``), launched with ``fieldnotes.distributed.run_on_cpu_ranks``.

Each rank builds the same tokenizer, data and model from the seed, takes its slice of every global
batch, and DeepSpeed averages the gradients; ``reference_losses`` computes the same training in one
process with plain PyTorch, which the DeepSpeed losses must match.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def zero_config(stage: int, micro_batch: int = 8, world_size: int = 2, lr: float = 1e-3) -> dict:
    """A DeepSpeed config for ZeRO ``stage`` 2 or 3, fp32, AdamW (torch implementation), clip 1.0."""
    if stage not in (2, 3):
        raise ValueError(f"stage must be 2 or 3, got {stage!r}")
    zero: dict = {
        "stage": stage,
        "reduce_bucket_size": 5e6,
        "allgather_bucket_size": 5e6,
        "overlap_comm": False,
    }
    if stage == 3:
        zero.update({"stage3_param_persistence_threshold": 0, "stage3_max_reuse_distance": 0,
                     "stage3_prefetch_bucket_size": 5e6})  # fmt: skip
        del zero["allgather_bucket_size"]
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": 1,
        "train_batch_size": micro_batch * world_size,
        "gradient_clipping": 1.0,
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": lr, "weight_decay": 0.01, "torch_adam": True},
        },
        "zero_optimization": zero,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def write_zero_configs(folder: str | Path, micro_batch: int = 8, world_size: int = 2) -> list[Path]:
    """Write ``zero2.json`` and ``zero3.json`` into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for stage in (2, 3):
        p = folder / f"zero{stage}.json"
        p.write_text(json.dumps(zero_config(stage, micro_batch, world_size), indent=2) + "\n")
        out.append(p)
    return out


def _setup(seed: int, n_images: int = 64):
    """Deterministic tokenizer, model, image tokens and VQA tensors for the distributed runs."""
    import torch

    from fieldnotes.book import seed_everything
    from fieldnotes.vlm.data import images_array, make_scans
    from fieldnotes.vlm.evaluate import prompt_text
    from fieldnotes.vlm.fusion import FusionConfig
    from fieldnotes.vlm.language import LanguageConfig, build_language_model, train_tokenizer
    from fieldnotes.vlm.model import MedVLM
    from fieldnotes.vlm.pipeline import _seq_batches
    from fieldnotes.vlm.text import make_vqa
    from fieldnotes.vlm.vision import VisionConfig, VisionEncoder, encode_images

    seed_everything(seed)
    scans = make_scans(n_images, seed, 32)
    items = make_vqa(scans, seed, 2)
    tok = train_tokenizer([prompt_text(i.question) + " " + i.answer for i in items])
    enc = VisionEncoder(VisionConfig(image_size=32, patch=8, hidden=32, layers=1, heads=2))
    feats = encode_images(enc, images_array(scans))
    lm = build_language_model(len(tok), LanguageConfig(hidden=32, layers=2, heads=2))
    model = MedVLM(
        lm,
        FusionConfig(kind="qformer", num_queries=4, qformer_layers=1, qformer_hidden=32, heads=2),
        32,
    )
    ids, mask, labels = _seq_batches(
        tok, [prompt_text(i.question) for i in items], [i.answer for i in items]
    )
    img = torch.tensor([i.image for i in items])
    return model, feats, ids, mask, labels, img


def _global_batch(step: int, seed: int, n: int, size: int) -> np.ndarray:
    return np.random.default_rng([seed, step, 33]).integers(0, n, size)


def _rank_train(rank: int, world_size: int, stages: tuple, steps: int, micro_batch: int, seed: int):
    """One DeepSpeed rank: for each ZeRO stage in ``stages`` train a fresh model ``steps`` steps on its
    slice of each global batch; returns one dict per stage (losses and shard sizes)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch 2.13's collective renames
    warnings.filterwarnings("ignore", category=UserWarning)
    import deepspeed

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    deepspeed.init_distributed(dist_backend="gloo")
    return [_train_stage(rank, world_size, s, steps, micro_batch, seed) for s in stages]


def _train_stage(rank: int, world_size: int, stage: int, steps: int, micro_batch: int, seed: int):
    """Train one stage on this rank (the process group is already up)."""
    import time

    import deepspeed
    import torch

    model, feats, ids, mask, labels, img = _setup(seed)
    params = list(model.parameters())
    cfg = zero_config(stage, micro_batch, world_size)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=params, config=cfg)
    losses = []
    t0 = time.perf_counter()
    for step in range(steps):
        idx = _global_batch(step, seed, len(ids), micro_batch * world_size)
        mine = torch.as_tensor(idx[rank * micro_batch : (rank + 1) * micro_batch])
        loss = engine(ids[mine], mask[mine], labels[mine], features=feats[img[mine]]).loss
        engine.backward(loss)
        engine.step()
        t = loss.detach().clone()
        torch.distributed.all_reduce(t)
        losses.append(float(t) / world_size)
    seconds = time.perf_counter() - t0
    mod = engine.module.parameters
    local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in mod())
    total = sum(getattr(p, "ds_numel", p.numel()) for p in mod())
    return {
        "rank": rank,
        "stage": stage,
        "losses": losses,
        "local_parameters": int(local),
        "total_parameters": int(total),
        "samples_per_second": steps * micro_batch / seconds,
    }


def train_deepspeed_stages(
    stages: tuple = (2, 3),
    world_size: int = 2,
    steps: int = 5,
    micro_batch: int = 8,
    seed: int = 0,
    timeout_s: float = 900.0,
) -> dict[int, list[dict]]:
    """Train under each ZeRO stage in ``stages`` on ``world_size`` CPU processes (one launch);
    returns {stage: one dict per rank}."""
    from fieldnotes.distributed import run_on_cpu_ranks

    for stage in stages:
        if stage not in (2, 3):
            raise ValueError(f"stages must contain only 2 or 3, got {stages!r}")
    args = (tuple(stages), steps, micro_batch, seed)
    per_rank = run_on_cpu_ranks(_rank_train, world_size, *args, timeout_s=timeout_s)
    return {stage: [r[i] for r in per_rank] for i, stage in enumerate(stages)}


def reference_losses(
    world_size: int = 2, steps: int = 5, micro_batch: int = 8, seed: int = 0
) -> list[float]:
    """The same training in one process with torch AdamW: gradient = mean of the ranks' micro-batch gradients."""
    import torch

    model, feats, ids, mask, labels, img = _setup(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    out = []
    for step in range(steps):
        idx = _global_batch(step, seed, len(ids), micro_batch * world_size)
        opt.zero_grad()
        total = 0.0
        for r in range(world_size):
            mine = torch.as_tensor(idx[r * micro_batch : (r + 1) * micro_batch])
            loss = (
                model(ids[mine], mask[mine], labels[mine], features=feats[img[mine]]).loss
                / world_size
            )
            loss.backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        out.append(total)
    return out
