"""Predict the peak live bytes of one training step of the measured run, term by term.

The chapter's estimator for a rank of :func:`fieldnotes.memory.measure_zero`'s run: the paper's
model states for the engine (:class:`~fieldnotes.memory.engines.EngineModel`), plus what each of
six moments of the step (:data:`PHASES`) adds; the prediction is the largest moment. Each term
was found in the :class:`~fieldnotes.memory.timeline.LiveBytes` timeline of a measured step and
is computed from the model's shapes, the engine's documented or implemented behaviour and the
run's ZeRO settings (``RunSpec.zero_settings``: the bucket size; under DeepSpeed's default
persistence, ZeRO-3 also keeps every parameter tensor under ``stage3_param_persistence_threshold``
elements gathered whole, :func:`persistent_parameters`), never from the measured bytes.

At the start of the last micro-batch's backward (``"backward"``):

- ``activations``: ``layers`` x :func:`~fieldnotes.memory.predicted_activation_bytes` in the
  engine's compute dtype (bf16 for DeepSpeed, fp32 for PyTorch's engines);
- ``logits``: the fp32 log-softmax output the loss keeps, ``LOGIT_BYTES`` x s x b x V;
- ``logit_gradient``: two fp32 tensors of the logits' size that backward creates while the logits
  are still held (``nll_loss_backward``'s output and ``_log_softmax_backward_data``'s, seen by the
  tracker as the step's first two backward allocations);
- ``gathered``: at DeepSpeed ZeRO-3, the largest layer gathered whole (BLOOM's embedding, which is
  also the output head); under FSDP2, the root unit (every parameter outside the wrapped blocks),
  which ``fully_shard`` leaves unsharded between forward and backward;
- ``outer_activations``: the hidden-state tensors saved outside the blocks (s x b x h each, compute
  dtype): the embedding layer norm's input, the final layer norm's input and the output head's
  input; the head's backward frees the last, the final norm's the second, the embedding norm's
  backward the first, so two are left at the first gradient and one inside the last block's
  backward;
- ``block_unsharded`` under FSDP2: the last block's all-gather output, which FSDP2 issues as
  backward starts (before the loss's backward in the timeline);
- ``buckets``: DeepSpeed's gradient bucket at stages 1 and 3 (``reduce_bucket_size`` 16-bit
  elements; ZeRO-1 keeps it through accumulation, ZeRO-3 preallocates it), or DDP's buckets (every
  fp32 gradient once, 4 bytes per parameter). ZeRO-2 reduces every micro-batch and frees its
  bucket after each, so it has none here;
- no term for gloo's reduce-scatter copies (the CPU backend copies a reduce-scatter's input
  outside PyTorch's operators; the tracker first sees the copies in the ``split`` inside the
  collective's ``work.wait()``). Counted from when they are first seen (as PyTorch's
  ``MemTracker`` counts them; a test runs both trackers on the same steps), they are not live at
  ZeRO-3's peak, the optimizer step, nor at FSDP2's (the two moments inside the last block's
  backward below).

After the output head's backward (``"first gradient"``), when the logits and their gradients are
freed and the first parameter gradient arrives: the activations, model states, gathered term, every engine's bucket (ZeRO-2 allocates its bucket again here), and
``head_gradient``: the output head's weight gradient, which for a tied embedding waits as a
temporary until the embedding's own gradient arrives at the end of backward.

Inside the last transformer block's backward, two moments (traced in the timeline with torch
2.13's FSDP2, ``fully_shard`` per block and on the root, and transformers 5.24's BLOOM; every
engine has them, FSDP2 holds the most there):

- ``"mlp backward"``: BLOOM's GELU backward (``bloom_gelu_back``, its eager tanh formula) holds
  ``GELU_BACKWARD_TEMPORARIES`` = 5 temporaries of the MLP's 4h width at once, beside the gradient
  flowing into it and the residual stream's gradient (``mlp_backward``: (5 + 1) x s x b x 4h + s x
  b x h elements in the compute dtype); every block's activations are still held but the GELU's
  output, which the MLP's second linear layer saved and freed with its backward. Under FSDP2,
  ``block_unsharded``: the block's all-gathered fp32 parameters and the next block's prefetched
  all-gather output (backward prefetch; none with a single block), and ``block_gradients``: the
  second linear layer's unsharded fp32 weight and bias gradients, already computed. The output
  head's gradient waits (``head_gradient``) and the engine's buckets are as at the first gradient.
- ``"block reduce-scatter"``: when FSDP2 reduce-scatters the block's gradients, one block's
  activations are freed; it holds the block's unsharded parameters and the prefetched output as
  above, and ``block_gradients`` = the block's unsharded fp32 gradients twice (autograd's, and
  the flat reduce-scatter input ``foreach_reduce`` copies them into). At micro-batch 2 of the CI
  shape FSDP2 peaks here, at micro-batch 4 in the GELU backward. For the other engines the
  block terms are zero and this moment is never the largest.

At the end of backward (``"backward end"``), when activations are gone: the model states, the
gathered and bucket terms above, and ``tied_gradient``: BLOOM ties its embedding to the
output head, so the head's gradient and the embedding's are computed separately and summed (three
gradient-dtype tensors of the largest layer's size besides the stored gradient).

In the optimizer step (``"optimizer"``):

- ``model_states`` less what DeepSpeed ZeRO-1 has released by then: it keeps whole gradients while
  they accumulate and frees those it does not own once they are reduced, so at the step it holds
  ZeRO-2's gradient partition;
- ``fp32_gradients``: DeepSpeed's fp32 copy of the gradients it steps (4 bytes per parameter at
  stage 0, per element of the rank's partition at stages 1-3);
- ``optimizer_temporaries``: PyTorch's single-tensor AdamW (the CPU default) computes
  ``exp_avg_sq.sqrt()`` and its quotient, two fp32 temporaries the size of the largest tensor it
  steps (a parameter, or DeepSpeed's flat partition at stages 1-3);
- ``buckets`` where the engine keeps them through the step (DeepSpeed ZeRO-3 and DDP; ZeRO-1 and
  ZeRO-2 free theirs at the accumulation boundary).

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
    "head_gradient",
    "tied_gradient",
    "fp32_gradients",
    "optimizer_temporaries",
    "mlp_backward",
    "block_unsharded",
    "block_gradients",
    "outer_activations",
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
    head_gradient: int = 0
    tied_gradient: int = 0
    fp32_gradients: int = 0
    optimizer_temporaries: int = 0
    mlp_backward: int = 0
    block_unsharded: int = 0
    block_gradients: int = 0
    outer_activations: int = 0

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


PHASES = (
    "backward",
    "first gradient",
    "mlp backward",
    "block reduce-scatter",
    "backward end",
    "optimizer",
)
GELU_BACKWARD_TEMPORARIES = 5  # tensors bloom_gelu_back holds at once (transformers 5.24)


def _root_parameters(config) -> int:
    """Parameters outside the transformer blocks (what FSDP2's root unit holds)."""
    import torch
    from transformers import BloomForCausalLM

    with torch.device("meta"):
        model = BloomForCausalLM(config)
    blocks = sum(p.numel() for p in model.transformer.h.parameters())
    return sum(p.numel() for p in model.parameters()) - blocks


def persistent_parameters(config) -> int:
    """Elements of the parameters DeepSpeed ZeRO-3 keeps gathered whole under its default
    ``stage3_param_persistence_threshold`` (those with fewer elements than it)."""
    import torch
    from transformers import BloomForCausalLM

    from fieldnotes.memory.runs import DEFAULT_PERSISTENCE

    with torch.device("meta"):
        model = BloomForCausalLM(config)
    return sum(p.numel() for p in model.parameters() if p.numel() < DEFAULT_PERSISTENCE)


def phase_peaks(spec, engine: str, world_size: int) -> tuple[PeakPrediction, ...]:
    """The chapter's estimate of one rank's peak in each of ``PHASES`` (bytes by term)."""
    from fieldnotes.memory.budget import LOGIT_BYTES
    from fieldnotes.memory.counting import count_parameters, largest_layer_parameters
    from fieldnotes.memory.runs import bucket_elements, small_bloom_config
    from fieldnotes.memory.saved import predicted_activation_bytes
    from fieldnotes.memory.zero import check_count, shard

    _check_engine(engine)
    world_size = check_count("world_size", world_size, minimum=1)
    model = ENGINE_MODEL[engine]
    config = small_bloom_config(spec)
    params = count_parameters(config)
    largest = largest_layer_parameters(config)
    deepspeed = engine.startswith("deepspeed-")
    formula = model.formula_bytes(params, world_size)
    states = sum(formula.values())
    per_layer = predicted_activation_bytes(
        config,
        seq_len=spec.seq_len,
        micro_batch=spec.micro_batch,
        dtype="bfloat16" if deepspeed else "float32",
    )
    logits = LOGIT_BYTES * spec.seq_len * spec.micro_batch * spec.vocab
    if deepspeed:
        bucket = 2 * bucket_elements(spec) if model.stage >= 1 else 0
        gathered = model.weight_bytes * largest if model.stage == 3 else 0
        if model.stage == 3 and spec.zero_settings in ("default-persistence", "deepspeed-default"):
            gathered += model.weight_bytes * persistent_parameters(config)
    else:
        bucket = 4 * params if engine == "torch-zero1" else 0
        gathered = 0
    block = 0  # parameters of one transformer block, where FSDP2 gathers blocks one by one
    if engine == "torch-fsdp":
        root = _root_parameters(config)
        gathered = 4 * root
        block = (params - root) // spec.layers
    held = dict(model_states=states, gathered=gathered)
    activations = spec.layers * per_layer
    act_bytes = 2 if deepspeed else 4  # the compute dtype's bytes per element
    tokens = spec.seq_len * spec.micro_batch
    outer = act_bytes * tokens * spec.hidden  # one hidden-state tensor outside the blocks
    tied = config.tie_word_embeddings
    backward = PeakPrediction(
        "backward",
        activations=activations,
        logits=logits,
        logit_gradient=2 * logits,
        buckets=0 if (deepspeed and model.stage == 2) else bucket,
        block_unsharded=4 * block,
        outer_activations=3 * outer,
        **held,
    )
    first_gradient = PeakPrediction(
        "first gradient",
        activations=activations,
        outer_activations=2 * outer,
        buckets=bucket,
        head_gradient=model.gradient_bytes * largest if tied else 0,
        **held,
    )
    mlp_width = tokens * 4 * spec.hidden  # elements of one of the MLP's 4h-wide tensors
    prefetched = block if spec.layers > 1 else 0  # the next block's all-gather output
    mlp_backward = PeakPrediction(
        "mlp backward",
        activations=activations - act_bytes * mlp_width,
        outer_activations=outer,
        mlp_backward=act_bytes
        * ((GELU_BACKWARD_TEMPORARIES + 1) * mlp_width + tokens * spec.hidden),
        block_unsharded=4 * (block + prefetched),
        block_gradients=4 * (4 * spec.hidden * spec.hidden + spec.hidden) if block else 0,
        buckets=bucket,
        head_gradient=model.gradient_bytes * largest if tied else 0,
        **held,
    )
    block_reduce_scatter = PeakPrediction(
        "block reduce-scatter",
        activations=activations - per_layer,
        outer_activations=outer,
        block_unsharded=4 * (block + prefetched),
        block_gradients=2 * 4 * block,
        buckets=bucket,
        head_gradient=model.gradient_bytes * largest if tied else 0,
        **held,
    )
    backward_end = PeakPrediction(
        "backward end",
        tied_gradient=3 * model.gradient_bytes * largest if tied else 0,
        buckets=bucket,
        **held,
    )
    if deepspeed and model.stage >= 1:
        stepped = shard(params, world_size)  # the flat fp32 partition, stepped as one tensor
    elif engine == "torch-fsdp":
        stepped = shard(largest, world_size)
    else:
        stepped = largest
    released = 0
    if deepspeed and model.stage == 1:  # ZeRO-1 frees the gradients it does not own
        released = formula["gradients"] - model.gradient_bytes * shard(params, world_size)
    optimizer = PeakPrediction(
        "optimizer",
        model_states=states - released,
        buckets=bucket if (model.stage == 3 or not deepspeed) else 0,
        fp32_gradients=(4 * (params if model.stage == 0 else stepped)) if deepspeed else 0,
        optimizer_temporaries=8 * stepped,
    )
    return backward, first_gradient, mlp_backward, block_reduce_scatter, backward_end, optimizer


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


__all__ = [
    "GELU_BACKWARD_TEMPORARIES",
    "PHASES",
    "TERMS",
    "PeakPrediction",
    "paper_peak",
    "peak_table",
    "persistent_parameters",
    "phase_peaks",
    "predicted_peak",
]
