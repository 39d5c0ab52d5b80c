"""Read the GPU check of the memory model (``benchmarks/gpu_memory.py``'s JSON) into tables.

The check runs once on a CUDA machine and commits its result; the book shows it next to the
formulas. Nothing here needs a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from fieldnotes.memory.activations import activation_bytes_per_layer

DEFAULT_PATH = Path("benchmarks") / "results" / "gpu_memory.json"


def find_gpu_check(path: str | Path | None = None) -> Path | None:
    """The GPU-check JSON: ``path`` if given, else the repository's committed one (None if absent)."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"path {str(p)!r} is not a file (the GPU check's JSON)")
        return p
    from fieldnotes.book import repo_root

    for base in (repo_root(), Path.cwd(), Path.cwd().parent):
        if base is not None and (base / DEFAULT_PATH).is_file():
            return base / DEFAULT_PATH
    return None


def gpu_check_tables(path: str | Path):
    """(model states table, activations table) from a GPU-check JSON: measured vs formula, bytes."""
    import pandas as pd

    data = json.loads(Path(path).read_text())
    psi = int(data["parameters"])
    states = pd.DataFrame(
        {
            "measured bytes": [
                data["weights_bytes"],
                data["grads_bytes"],
                data["master_bytes"],
                data["adam_bytes"],
                data["model_states_bytes"],
            ],
            "formula bytes": [2 * psi, 2 * psi, 4 * psi, 8 * psi, 16 * psi],
        },
        index=["16-bit weights", "16-bit gradients", "fp32 master", "Adam moments", "total"],
    )
    states["bytes/param measured"] = states["measured bytes"] / psi
    cfg = data["config"]
    s, b = int(data["seq"]), int(data["batch"])
    h, a = int(cfg["hidden_size"]), int(cfg["n_head"])
    per_layer = list(data["saved_bytes_per_block"])
    formula = activation_bytes_per_layer(s, b, h, a)
    sbh = s * b * h
    acts = pd.DataFrame(
        {
            "bytes per layer": [max(per_layer), formula],
            "in units of sbh (after 5as²b)": [
                (max(per_layer) - 5 * a * s * s * b) / sbh,
                (formula - 5 * a * s * s * b) / sbh,
            ],
        },
        index=["measured (largest layer)", "Korthikanti et al. sbh(34 + 5as/h)"],
    )
    return states, acts, data


def gpu_check_facts(data: dict) -> dict:
    """What a GPU-check JSON says, as plain numbers: model-state bytes per parameter, the gradients'
    bytes beyond 2 per parameter, the largest layer's saved bytes in units of sbh (after the
    attention scores' 5as²b) beside Korthikanti et al.'s 34, and the measured/formula ratio."""
    psi = int(data["parameters"])
    cfg = data["config"]
    s, b = int(data["seq"]), int(data["batch"])
    h, a = int(cfg["hidden_size"]), int(cfg["n_head"])
    measured = max(int(x) for x in data["saved_bytes_per_block"])
    formula = activation_bytes_per_layer(s, b, h, a)
    scores = 5 * a * s * s * b
    return {
        "gpu": str(data.get("gpu", "GPU")),
        "seq": s,
        "batch": b,
        "states_bytes_per_param": int(data["model_states_bytes"]) / psi,
        "grads_extra_bytes": int(data["grads_bytes"]) - 2 * psi,
        "measured_sbh": (measured - scores) / (s * b * h),
        "formula_sbh": (formula - scores) / (s * b * h),
        "measured_over_formula": measured / formula,
    }
