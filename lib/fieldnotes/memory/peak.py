"""Predict the peak live bytes of one training step of the measured run, term by term.

The chapter's estimator for a rank of :func:`fieldnotes.memory.measure_zero`'s run: the paper's
model states for the engine (:class:`~fieldnotes.memory.engines.EngineModel`), plus what each
phase of a step adds at its own peak; the prediction is the larger phase.

At the start of the last micro-batch's backward:

- ``activations``: ``layers`` x :func:`~fieldnotes.memory.predicted_activation_bytes` in the
  engine's compute dtype (bf16 for DeepSpeed, fp32 for PyTorch's engines);
- ``logits``: the fp32 log-softmax output the loss keeps, ``LOGIT_BYTES`` x s x b x V;
- ``logit_gradient``: its fp32 gradient, which backward creates while the logits are still held;
- ``gathered``: at ZeRO-3, the largest layer gathered whole (BLOOM's embedding, which is also the
  output head);
- ``buckets``: DeepSpeed's gradient bucket at stages 1-3 (``reduce_bucket_size`` 16-bit
  elements), or DDP's buckets (every fp32 gradient once, 4 bytes per parameter).

In the optimizer step:

- ``fp32_gradients``: DeepSpeed's fp32 copy of the gradients it steps (4 bytes per parameter at
  stage 0, per element of the rank's partition at stages 1-3);
- ``optimizer_temporaries``: PyTorch's single-tensor AdamW (the CPU default) computes
  ``exp_avg_sq.sqrt()`` and its quotient, two fp32 temporaries the size of the largest tensor it
  steps (a parameter, or DeepSpeed's flat partition at stages 1-3);
- ``buckets`` where the engine keeps them through the step (not ZeRO-2, which frees them at the
  accumulation boundary).

Beside it, :func:`paper_peak` is the ZeRO paper's count, model states only.
"""

from __future__ import annotations

from dataclasses import dataclass

from fieldnotes.memory.engines import ENGINE_MODEL, ENGINES

TERMS = (
    "model_states",
    "activations",
    "logits",
    "logit_gradient",
    "gathered",
    "buckets",
    "fp32_gradients",
    "optimizer_temporaries",
)


@dataclass(frozen=True)
class PeakPrediction:
    """Predicted bytes at the step's peak on one rank, by term, and the phase it falls in."""

    phase: str
    model_states: int
    activations: int = 0
    logits: int = 0
    logit_gradient: int = 0
    gathered: int = 0
    buckets: int = 0
    fp32_gradients: int = 0
    optimizer_temporaries: int = 0

    @property
    def total(self) -> int:
        """All terms, bytes."""
        return sum(getattr(self, t) for t in TERMS)

    def terms(self) -> dict[str, int]:
        """Bytes of each term, in ``TERMS`` order."""
        return {t: getattr(self, t) for t in TERMS}


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def phase_peaks(spec, engine: str, world_size: int) -> tuple[PeakPrediction, PeakPrediction]:
    """The chapter's estimate of one rank's peak in backward and in the optimizer step."""
    from fieldnotes.memory.budget import LOGIT_BYTES
    from fieldnotes.memory.counting import count_parameters, largest_layer_parameters
    from fieldnotes.memory.runs import BUCKET_ELEMENTS, small_bloom_config
    from fieldnotes.memory.saved import predicted_activation_bytes
    from fieldnotes.memory.zero import check_count, shard

    _check_engine(engine)
    world_size = check_count("world_size", world_size, minimum=1)
    model = ENGINE_MODEL[engine]
    config = small_bloom_config(spec)
    params = count_parameters(config)
    largest = largest_layer_parameters(config)
    deepspeed = engine.startswith("deepspeed-")
    states = sum(model.formula_bytes(params, world_size).values())
    per_layer = predicted_activation_bytes(
        config,
        seq_len=spec.seq_len,
        micro_batch=spec.micro_batch,
        dtype="bfloat16" if deepspeed else "float32",
    )
    logits = LOGIT_BYTES * spec.seq_len * spec.micro_batch * spec.vocab
    if deepspeed:
        bucket = 2 * BUCKET_ELEMENTS if model.stage >= 1 else 0
    else:
        bucket = 4 * params if engine == "torch-zero1" else 0
    backward = PeakPrediction(
        "backward",
        model_states=states,
        activations=spec.layers * per_layer,
        logits=logits,
        logit_gradient=logits,
        gathered=model.weight_bytes * largest if model.stage == 3 else 0,
        buckets=bucket,
    )
    if deepspeed and model.stage >= 1:
        stepped = shard(params, world_size)  # the flat fp32 partition, stepped as one tensor
    elif engine == "torch-fsdp":
        stepped = shard(largest, world_size)
    else:
        stepped = largest
    optimizer = PeakPrediction(
        "optimizer",
        model_states=states,
        buckets=0 if model.stage == 2 else bucket,
        fp32_gradients=(4 * (params if model.stage == 0 else stepped)) if deepspeed else 0,
        optimizer_temporaries=8 * stepped,
    )
    return backward, optimizer


def predicted_peak(spec, engine: str, world_size: int) -> PeakPrediction:
    """The chapter's estimate of one rank's peak live bytes for ``spec`` under ``engine``."""
    return max(phase_peaks(spec, engine, world_size), key=lambda p: p.total)


def paper_peak(spec, engine: str, world_size: int) -> int:
    """The ZeRO paper's per-rank count for ``engine``: model states only, bytes."""
    from fieldnotes.memory.counting import count_parameters
    from fieldnotes.memory.runs import small_bloom_config

    _check_engine(engine)
    params = count_parameters(small_bloom_config(spec))
    return sum(ENGINE_MODEL[engine].formula_bytes(params, world_size).values())


def peak_table(measurement, spec, world_size: int):
    """Measured peak (largest rank) beside the paper's count and the chapter's estimate, per engine.

    Errors are prediction / measurement - 1. ``measurement`` is :func:`measure_zero`'s result.
    """
    import pandas as pd

    peaks = measurement.timeline.groupby(["engine", "rank"], sort=False)["total"].max()
    rows = []
    for engine, per_rank in peaks.groupby(level="engine", sort=False):
        measured = int(per_rank.max())
        chapter = predicted_peak(spec, engine, world_size)
        paper = paper_peak(spec, engine, world_size)
        rows.append(
            {
                "engine": engine,
                "measured_peak_bytes": measured,
                "paper_bytes": paper,
                "paper_error": paper / measured - 1,
                "chapter_bytes": chapter.total,
                "chapter_error": chapter.total / measured - 1,
                "predicted_phase": chapter.phase,
            }
        )
    return pd.DataFrame(rows).set_index("engine")


__all__ = ["TERMS", "PeakPrediction", "paper_peak", "peak_table", "phase_peaks", "predicted_peak"]
