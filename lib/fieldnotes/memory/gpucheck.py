"""Read the GPU check of the memory model (``benchmarks/gpu_memory.py``'s JSON) into tables.

The check runs once on a CUDA machine and commits its result; the book shows it next to the
formulas. Nothing here needs a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from fieldnotes.memory.activations import activation_bytes_per_layer
from fieldnotes.memory.saved import predicted_activation_bytes

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
    measured, korthikanti, fitted = _layer_bytes(data)
    acts = pd.DataFrame(
        {"bytes per layer": [measured, korthikanti, fitted]},
        index=["measured (largest layer)", "Korthikanti et al. sbh(34 + 5as/h)",
               "BLOOM fitted on the CPU, 32.06 sbh + 6 as²b"],
    )
    acts["model / measured"] = acts["bytes per layer"] / measured
    return states, acts, data


def _layer_bytes(data: dict) -> tuple[int, int, int]:
    """(measured largest layer, Korthikanti et al., the CPU-fitted BLOOM model), bytes per layer."""
    from transformers import BloomConfig

    cfg = data["config"]
    s, b = int(data["seq"]), int(data["batch"])
    bloom = BloomConfig(hidden_size=int(cfg["hidden_size"]), n_head=int(cfg["n_head"]))
    return (
        max(int(x) for x in data["saved_bytes_per_block"]),
        activation_bytes_per_layer(s, b, bloom.hidden_size, bloom.n_head),
        predicted_activation_bytes(bloom, seq_len=s, micro_batch=b),
    )


def gpu_check_facts(data: dict) -> dict:
    """What a GPU-check JSON says, as plain numbers: model-state bytes per parameter, the gradients'
    bytes beyond 2 per parameter, the largest layer's saved bytes over Korthikanti et al.'s
    count and over the BLOOM model fitted on the CPU (:func:`predicted_activation_bytes`), and
    ``one_point_alpha``: the bytes per sbh this one layer shows with the score term held at
    Korthikanti et al.'s 5·as²b (what a fit of α alone to this point would read)."""
    psi = int(data["parameters"])
    measured, korthikanti, fitted = _layer_bytes(data)
    s, b = int(data["seq"]), int(data["batch"])
    h, a = int(data["config"]["hidden_size"]), int(data["config"]["n_head"])
    return {
        "gpu": str(data.get("gpu", "GPU")),
        "seq": int(data["seq"]),
        "batch": int(data["batch"]),
        "states_bytes_per_param": int(data["model_states_bytes"]) / psi,
        "grads_extra_bytes": int(data["grads_bytes"]) - 2 * psi,
        "measured_over_formula": measured / korthikanti,
        "measured_over_fitted": measured / fitted,
        "one_point_alpha": (measured - 5 * a * s * s * b) / (s * b * h),
    }
