"""An interactive memory calculator for workshops (ipywidgets) and its static, testable core."""

from __future__ import annotations

from fieldnotes.memory.budget import PRECISIONS, Part, training_budget
from fieldnotes.memory.story import A100_40GB, HEADROOM_GB, usable_bytes
from fieldnotes.memory.zero import check_count


def budget_rows(
    *,
    trainable_b: float,
    frozen_b: float,
    n_gpus: int,
    stage: int,
    precision: str,
    offload: str | None,
    seq_len: int,
    micro_batch: int,
    recompute: str,
    layers: int,
    hidden: int,
    heads: int,
    gpu_gb: float = A100_40GB,
    headroom_gb: float = HEADROOM_GB,
    vocab: int = 0,
    largest_layer_b: float = 0.0,
    tied_embedding_b: float = 0.0,
    bucket_elements: int = 0,
):
    """One setting's per-GPU budget at the step's peak moment as a pandas table in 10^9-byte GB
    (parameters in billions; ``gpu_gb`` defaults to an A100 40GB's 40 GiB; BLOOM's measured
    activations; "fits GPU?" leaves ``headroom_gb`` free, see
    :data:`fieldnotes.memory.story.HEADROOM_GB`; ``tied_embedding_b`` a trained embedding tied to the output head,
    ``bucket_elements`` DeepSpeed's ``reduce_bucket_size``)."""
    import pandas as pd

    trainable = check_count("trainable params", round(trainable_b * 1e9), minimum=0)
    frozen = check_count("frozen params", round(frozen_b * 1e9), minimum=0)
    tied = check_count("tied embedding params", round(tied_embedding_b * 1e9), minimum=0)
    parts = [Part("trained", trainable, "trained", tied_params=min(tied, trainable)),
             Part("frozen", frozen, "frozen")]
    b = training_budget(
        parts,
        stage=stage,
        n_gpus=n_gpus,
        precision=precision,
        offload=offload,
        activation_layers=layers,
        seq_len=seq_len,
        micro_batch=micro_batch,
        hidden=hidden,
        heads=heads,
        recompute=recompute,
        vocab=vocab,
        largest_layer_params=check_count("largest layer params", round(largest_layer_b * 1e9), minimum=0),
        bucket_elements=bucket_elements,
    )
    lines = b.as_gb()
    table = pd.DataFrame({"GB per GPU": list(lines.values())}, index=list(lines))
    table.loc["peak moment"] = b.peak_phase
    table.loc["fits GPU?"] = "yes" if b.total <= usable_bytes(gpu_gb, headroom_gb) else "no"
    return table


def memory_calculator(**defaults):
    """An ipywidgets panel: change the setting, read the per-GPU budget (keyword = start value)."""
    import ipywidgets as w
    from IPython.display import display

    start = {
        "trainable_b": 7.07,
        "frozen_b": 0.0,
        "n_gpus": 8,
        "stage": 3,
        "precision": "bf16 mixed (Adam)",
        "offload": None,
        "seq_len": 512,
        "micro_batch": 4,
        "recompute": "full",
        "layers": 30,
        "hidden": 4096,
        "heads": 32,
        "gpu_gb": round(A100_40GB, 2),
        "vocab": 250_880,
        "largest_layer_b": 1.028,
        "tied_embedding_b": 1.028,
        "bucket_elements": 500_000_000,  # DeepSpeed's default reduce_bucket_size
    }
    unknown = set(defaults) - set(start)
    if unknown:
        raise ValueError(f"unknown calculator settings {sorted(unknown)}; expected {sorted(start)}")
    start.update(defaults)
    style = {"description_width": "150px"}
    controls = {
        "trainable_b": w.FloatText(value=start["trainable_b"], description="trained params (B)"),
        "frozen_b": w.FloatText(value=start["frozen_b"], description="frozen params (B)"),
        "n_gpus": w.Dropdown(
            options=[1, 2, 4, 8, 16, 32, 64, 128, 256], value=start["n_gpus"], description="GPUs"
        ),
        "stage": w.Dropdown(options=[0, 1, 2, 3], value=start["stage"], description="ZeRO stage"),
        "precision": w.Dropdown(
            options=list(PRECISIONS), value=start["precision"], description="precision"
        ),
        "offload": w.Dropdown(
            options=[("none", None), ("optimizer (ZeRO-Offload)", "optimizer"),
                     ("parameters (stage 3)", "parameters")],
            value=start["offload"],
            description="offload to CPU",
        ),
        "seq_len": w.IntSlider(
            value=start["seq_len"], min=64, max=8192, step=64, description="sequence length"
        ),
        "micro_batch": w.IntSlider(
            value=start["micro_batch"], min=1, max=64, description="micro-batch"
        ),
        "recompute": w.Dropdown(
            options=["none", "full"],
            value=start["recompute"],
            description="recomputation",
        ),
        "layers": w.IntText(value=start["layers"], description="layers"),
        "hidden": w.IntText(value=start["hidden"], description="hidden size"),
        "heads": w.IntText(value=start["heads"], description="heads"),
        "gpu_gb": w.FloatText(value=start["gpu_gb"], description="GPU memory (GB)"),
        "vocab": w.IntText(value=start["vocab"], description="vocabulary"),
        "largest_layer_b": w.FloatText(
            value=start["largest_layer_b"], description="largest layer (B params)"
        ),
        "tied_embedding_b": w.FloatText(
            value=start["tied_embedding_b"], description="tied embedding (B params)"
        ),
        "bucket_elements": w.IntText(value=start["bucket_elements"], description="bucket (elements)"),
    }
    for c in controls.values():
        c.style = style
    out = w.Output()

    def show(**kw):
        out.clear_output(wait=True)
        with out:
            try:
                display(budget_rows(**kw))
            except (ValueError, TypeError) as err:
                print(f"invalid setting: {err}")

    w.interactive_output(show, controls)
    with out:
        display(budget_rows(**start))
    return w.HBox([w.VBox(list(controls.values())), out])
