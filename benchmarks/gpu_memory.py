"""Measure chapter 1's memory model on a real GPU: model states and activations of BLOOMZ-7b1.

Optional check, run on a CUDA machine (never in CI)::

    python benchmarks/gpu_memory.py --out benchmarks/results          # BLOOMZ-7b1, seq 2048
    python benchmarks/gpu_memory.py --tiny --device cpu                # a smoke test anywhere

What it measures, in the ZeRO paper's mixed-precision accounting (Rajbhandari et al. 2020):

1. model states of plain data parallelism on one GPU, allocated the way the paper counts them —
   16-bit weights (2 B/param), 16-bit gradients (2), an fp32 master copy (4), Adam's two fp32
   moments (4 + 4) — each read from ``torch.cuda.memory_allocated`` as it is created, after a
   real forward, backward and AdamW step on the full model;
2. activations per transformer layer: the bytes each ``BloomBlock`` saves for backward (tensors
   caught with ``torch.autograd.graph.saved_tensors_hooks``, parameters and duplicates left out),
   beside Korthikanti et al.'s s*b*h*(34 + 5*a*s/h) for 16-bit activations.

Writes ``gpu_memory.json`` and ``gpu_memory.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

GB = 10**9  # the paper's gigabyte; the table says GB for 10^9 bytes and GiB for 2^30
GiB = 2**30
BLOOMZ_7B1 = dict(vocab_size=250_880, hidden_size=4096, n_layer=30, n_head=32)
TINY = dict(vocab_size=1000, hidden_size=64, n_layer=2, n_head=4)


def korthikanti_bytes(s: int, b: int, h: int, a: int) -> int:
    """Activation bytes per layer with 16-bit activations and no recomputation: s*b*h*(34 + 5as/h)."""
    return s * b * h * 34 + 5 * a * s * s * b


def allocated(device) -> int:
    """Bytes currently allocated by the CUDA caching allocator (0 on the CPU)."""
    import torch

    if device.type != "cuda":
        return 0
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated(device)


def saved_bytes_per_block(model, input_ids) -> list[int]:
    """Bytes each transformer block saves for backward in one forward pass (parameters excluded)."""
    import torch

    blocks = list(model.transformer.h)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    current = {"block": None}
    per_block = [dict() for _ in blocks]

    def pack(t):
        # keep nothing in the graph (returning t kept every saved tensor alive past the pass and
        # inflated the step's peak); the storages are held only until the forward returns, so a
        # freed address reused later is not taken for the same storage
        i = current["block"]
        if i is not None:
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                per_block[i][storage.data_ptr()] = storage
        return None

    def unpack(_):
        raise RuntimeError("the measuring forward has no backward")

    hooks = []
    for i, block in enumerate(blocks):
        hooks.append(block.register_forward_pre_hook(lambda m, a, i=i: current.update(block=i)))
        hooks.append(block.register_forward_hook(lambda m, a, o: current.update(block=None)))
    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        model(input_ids=input_ids, use_cache=False)
    for h in hooks:
        h.remove()
    sizes = [sum(st.nbytes() for st in d.values()) for d in per_block]
    per_block.clear()
    return sizes


def run(config: dict, seq: int, batch: int, device_name: str) -> dict:
    """Build the model in bf16 on ``device_name`` and measure its model states and activations."""
    import torch
    from transformers import BloomConfig, BloomForCausalLM

    device = torch.device(device_name)
    cfg = BloomConfig(**config, use_cache=False)
    torch.manual_seed(0)
    result = {"config": config, "seq": seq, "batch": batch, "device": device_name}
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
        result["gpu_memory_bytes"] = torch.cuda.get_device_properties(device).total_memory

    base = allocated(device)
    t0 = time.perf_counter()
    with torch.device(device):
        torch.set_default_dtype(torch.bfloat16)
        model = BloomForCausalLM(cfg)
        torch.set_default_dtype(torch.float32)
    params = sum(p.numel() for p in model.parameters())
    result["parameters"] = params
    result["weights_bytes"] = allocated(device) - base

    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
    per_block = saved_bytes_per_block(model, ids)
    result["saved_bytes_per_block"] = per_block
    result["korthikanti_bytes_per_layer"] = korthikanti_bytes(
        seq, batch, cfg.hidden_size, cfg.n_head
    )

    # A real training step, counted piece by piece (activations freed after backward).
    before_grads = allocated(device)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    del loss
    result["grads_bytes"] = allocated(device) - before_grads

    before_master = allocated(device)
    master = [p.detach().float() for p in model.parameters()]
    result["master_bytes"] = allocated(device) - before_master

    # One AdamW per tensor, so the fp32 copy of a gradient is transient (as in the paper's count).
    before_adam = allocated(device)
    for p16, p32 in zip(model.parameters(), master, strict=True):
        p32.requires_grad_(True)
        p32.grad = p16.grad.float()
        opt = torch.optim.AdamW([p32], lr=1e-4)
        opt.step()
        p32.grad = None
        p16.data.copy_(p32.data)
        p32._fieldnotes_state = opt.state[p32]  # keep the moments alive after opt goes
        del opt
    result["adam_bytes"] = allocated(device) - before_adam
    result["model_states_bytes"] = sum(
        result[k] for k in ("weights_bytes", "grads_bytes", "master_bytes", "adam_bytes")
    )
    if device.type == "cuda":
        result["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def table(r: dict) -> str:
    """A Markdown table: measured bytes per part beside the paper's per-parameter count."""
    psi = r["parameters"]
    rows = [
        ("16-bit weights", r["weights_bytes"], 2 * psi),
        ("16-bit gradients", r["grads_bytes"], 2 * psi),
        ("fp32 master weights", r["master_bytes"], 4 * psi),
        ("Adam moments (fp32 m, v)", r["adam_bytes"], 8 * psi),
        ("model states, total", r["model_states_bytes"], 16 * psi),
    ]
    lines = [
        f"Measured on {r.get('gpu', r['device'])}, {platform.node()}; Ψ = {psi:,} parameters; one run.",
        "",
        "| part | measured (GB) | paper: bytes/param × Ψ (GB) | measured bytes/param |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, got, want in rows:
        lines.append(f"| {name} | {got / GB:.2f} | {want / GB:.2f} | {got / psi:.3f} |")
    act = r["saved_bytes_per_block"]
    k = r["korthikanti_bytes_per_layer"]
    lines += [
        "",
        f"Activations saved for backward per layer (s = {r['seq']}, b = {r['batch']}): "
        f"measured {min(act) / GB:.3f}–{max(act) / GB:.3f} GB; Korthikanti et al. "
        f"s·b·h·(34 + 5as/h) = {k / GB:.3f} GB (ratio {act[0] / k:.2f}).",
    ]
    if "peak_bytes" in r:
        lines.append(f"Peak allocated during the step: {r['peak_bytes'] / GB:.1f} GB "
                     f"({r['peak_bytes'] / GiB:.1f} GiB).")
    if "gpu_memory_bytes" in r:
        lines.append(f"GPU memory: {r['gpu_memory_bytes'] / GiB:.1f} GiB "
                     f"({r['gpu_memory_bytes'] / GB:.1f} GB).")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seq", type=int, default=2048, help="sequence length (tokens)")
    ap.add_argument("--batch", type=int, default=1, help="micro-batch size (sequences)")
    ap.add_argument("--tiny", action="store_true", help="a tiny config, for a smoke test")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    r = run(TINY if args.tiny else BLOOMZ_7B1, args.seq, args.batch, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_memory_tiny" if args.tiny else "gpu_memory"
    (args.out / f"{stem}.json").write_text(json.dumps(r, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(table(r))
    print(table(r))


if __name__ == "__main__":
    main()
