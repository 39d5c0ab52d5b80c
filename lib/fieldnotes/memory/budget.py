"""A training budget per GPU: trained, frozen and LoRA-adapted parts, ZeRO, offload, activations.

- A frozen part costs only its weights (no gradients, no optimizer states); ZeRO-3 shards those
  weights too, stages 0-2 replicate them.
- LoRA of rank r on a d_in -> d_out matrix adds r·(d_in + d_out) trainable parameters (the A and
  B factors, Hu et al. 2021) and freezes the matrix itself.
- Activations are the architecture's own, measured: ``architecture``'s fitted coefficients
  (:func:`fieldnotes.memory.saved.layer_activation_bytes`; BLOOM saves about 32·sbh + 6·as²b
  bytes per layer in 16-bit, not Korthikanti's GPT count), in the precision's activation dtype.
  When a part is LoRA-adapted, the activation layers are its layers: frozen matmuls keep no
  input for a weight gradient, and a BLOOM layer with LoRA on its attention matrices saves about
  22·sbh + 6·as²b (:data:`fieldnotes.memory.saved.LORA_COEFFICIENTS`, measured).
- Working memory of a step: the terms :mod:`fieldnotes.memory.peak` found in the measured step,
  each at the moment of the step (:data:`~fieldnotes.memory.peak.PHASES`) it is live in; the
  budget's total is its largest moment, and :meth:`Budget.at_peak` lists that moment's terms,
  which add up to the total. Under full recomputation one layer's full activations while backward
  recomputes it; with ``vocab`` the logits the loss keeps, :data:`LOGIT_BYTES` per token per
  vocabulary entry (transformers' fp32 log-softmax, measured by
  :func:`fieldnotes.memory.saved_loss_bytes`) and the two fp32 tensors of their size the loss's
  backward creates while they are held; at ZeRO-3 the largest layer's 16-bit weights gathered
  whole (the convention :func:`fieldnotes.memory.peak.phase_peaks` uses; its gradient is the
  tied-embedding terms below, or a bucket); the gradient buckets (DeepSpeed's
  ``reduce_bucket_size`` elements at stages 1-3, DDP's copy of every gradient at stage 0 on more
  than one GPU); for a trained tied embedding (a :class:`Part`'s ``tied_params``) the output head's
  gradient, which waits for the embedding's, and at the end of backward the two gradients and
  their sum; in the optimizer step DeepSpeed's fp32 copy of the gradients it steps (mixed
  precision, not offloaded).
- Not counted, since they are CPU-run artefacts of the measured step (see the chapter): the
  single-tensor AdamW temporaries (a GPU's fused Adam makes none of that size) and gloo's
  reduce-scatter copies; nor the allocator's fragmentation or NCCL's own buffers.
- Offload follows :func:`fieldnotes.memory.model_states`: ``"optimizer"`` (ZeRO-Offload, Ren et
  al. 2021) moves the gradient and optimizer-state partitions to CPU memory, the GPU keeps the
  16-bit weights; ``"parameters"`` (stage 3) moves the weight shards too, frozen ones included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fieldnotes.memory.zero import GB, ModelStates, check_count, check_heads, model_states, shard

MODES = ("trained", "frozen", "lora")
LOGIT_BYTES = 4  # bytes per logit the loss keeps for backward (fp32 log-softmax output)

# bytes per parameter: (weights, gradients, optimizer states K)
PRECISIONS = {
    "bf16 mixed (Adam)": (2, 2, 12),  # 16-bit weights/grads, fp32 master + m + v
    "fp16 mixed (Adam)": (2, 2, 12),
    "fp32 (Adam)": (4, 4, 8),  # fp32 weights/grads, m + v; no separate master copy
}


def lora_parameters(shapes: Iterable[Sequence[int]], rank: int) -> int:
    """Trainable parameters LoRA of ``rank`` adds: r·(d_in + d_out) for each (d_in, d_out) matrix."""
    r = check_count("rank", rank, minimum=1)
    total = 0
    for i, shape in enumerate(shapes):
        if len(shape) != 2:
            raise ValueError(f"shapes[{i}] must be (d_in, d_out), got {shape!r}")
        d_in = check_count(f"shapes[{i}][0]", shape[0], minimum=1)
        d_out = check_count(f"shapes[{i}][1]", shape[1], minimum=1)
        total += r * (d_in + d_out)
    return total


@dataclass(frozen=True)
class Part:
    """A component of a model: ``params`` parameters, ``mode`` trained, frozen or lora.

    For ``mode="lora"`` the part's own weights are frozen and ``lora_params`` trainable adapter
    parameters (see :func:`lora_parameters`) of rank ``lora_rank`` are added (the rank sizes the
    adapted layers' activations). ``tied_params``: the parameters of an
    input embedding this part ties to its output head (BLOOM's), whose two gradients a trained
    part computes separately and sums.
    """

    name: str
    params: int
    mode: str = "trained"
    lora_params: int = 0
    tied_params: int = 0
    lora_rank: int = 0

    def __post_init__(self):
        check_count("params", self.params, minimum=0)
        check_count("lora_params", self.lora_params, minimum=0)
        check_count("tied_params", self.tied_params, minimum=0)
        if self.tied_params > self.params:
            raise ValueError(
                f"tied_params of part {self.name!r} ({self.tied_params}) exceeds its params ({self.params})"
            )
        if self.mode not in MODES:
            raise ValueError(
                f"mode of part {self.name!r} must be one of {MODES}, got {self.mode!r}"
            )
        check_count("lora_rank", self.lora_rank, minimum=0)
        if self.mode != "lora" and (self.lora_params or self.lora_rank):
            raise ValueError(
                f"lora_params and lora_rank of part {self.name!r} must be 0 unless mode='lora', "
                f"got {self.lora_params} and {self.lora_rank}"
            )
        if self.mode == "lora" and self.lora_rank < 1:
            raise ValueError(
                f"lora_rank of LoRA part {self.name!r} must be >= 1 (it sizes the adapted layers' "
                f"activations), got {self.lora_rank}"
            )

    @property
    def trainable(self) -> int:
        """Parameters that get gradients and optimizer states."""
        return self.params if self.mode == "trained" else self.lora_params

    @property
    def frozen(self) -> int:
        """Parameters that are only read (weights only)."""
        return 0 if self.mode == "trained" else self.params

    @property
    def trained_tied(self) -> int:
        """Tied embedding parameters that get gradients (0 unless the part is trained)."""
        return self.tied_params if self.mode == "trained" else 0


WORKING_TERMS = (
    "activations",
    "recomputed_layer",
    "logits",
    "logit_gradient",
    "gathered_layer",
    "buckets",
    "head_gradient",
    "tied_gradient",
    "fp32_gradients",
)
# which working terms are live at each moment of the step (peak.PHASES), buckets aside
PHASE_TERMS = {
    "backward": ("activations", "logits", "logit_gradient", "gathered_layer"),
    "first gradient": ("activations", "recomputed_layer", "gathered_layer", "head_gradient"),
    "backward end": ("gathered_layer", "tied_gradient"),
    "optimizer": ("fp32_gradients",),
}
# the moments in words, for a page
PHASE_WORDS = {
    "backward": "the start of backward",
    "first gradient": "the output head's backward, when the first gradient arrives",
    "backward end": "the end of backward",
    "optimizer": "the optimizer step",
}
# activation dtype of each precision (fp16's layer saves what bf16's does: 2-byte tensors)
ACTIVATION_DTYPES = {
    "bf16 mixed (Adam)": "bfloat16",
    "fp16 mixed (Adam)": "bfloat16",
    "fp32 (Adam)": "float32",
}


@dataclass(frozen=True)
class Budget:
    """Bytes per GPU (and per GPU's share of CPU memory) for one training setting.

    The working terms (:data:`WORKING_TERMS`) are each one's size; :data:`PHASE_TERMS` and
    ``bucket_phases`` say at which moment of the step each is live.
    """

    weights: int
    gradients: int
    optimizer_states: int
    activations: int
    recomputed_layer: int
    logits: int
    logit_gradient: int
    gathered_layer: int
    buckets: int
    head_gradient: int
    tied_gradient: int
    fp32_gradients: int
    bucket_phases: tuple[str, ...]
    cpu_model_states: int
    trainable_params: int
    frozen_params: int

    @property
    def model_states(self) -> int:
        """Weights + gradients + optimizer states kept on the GPU (bytes)."""
        return self.weights + self.gradients + self.optimizer_states

    def phase_terms(self, phase: str) -> dict[str, int]:
        """Bytes of each working term at ``phase`` (one of PHASE_TERMS; 0 where not live)."""
        if phase not in PHASE_TERMS:
            raise ValueError(f"phase must be one of {tuple(PHASE_TERMS)}, got {phase!r}")
        live = set(PHASE_TERMS[phase]) | ({"buckets"} if phase in self.bucket_phases else set())
        return {t: getattr(self, t) if t in live else 0 for t in WORKING_TERMS}

    def phase_total(self, phase: str) -> int:
        """Model states + the working terms live at ``phase`` (bytes)."""
        return self.model_states + sum(self.phase_terms(phase).values())

    @property
    def peak_phase(self) -> str:
        """The moment of the step with the most bytes (the first of equals)."""
        return max(PHASE_TERMS, key=self.phase_total)

    @property
    def total(self) -> int:
        """Bytes on the GPU at the step's peak moment."""
        return self.phase_total(self.peak_phase)

    def at_peak(self) -> dict[str, int]:
        """Bytes of every term at the peak moment, model-state parts first; they sum to total."""
        states = {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer_states": self.optimizer_states,
        }
        return {**states, **self.phase_terms(self.peak_phase)}

    @property
    def working(self) -> int:
        """Bytes at the peak besides model states and stored activations."""
        terms = self.at_peak()
        return self.total - self.model_states - terms["activations"]

    def fits(self, gpu_bytes: int, *, headroom_bytes: int) -> bool:
        """Whether the total fits in ``gpu_bytes`` less ``headroom_bytes`` kept free for the CUDA
        context and the allocator (see :data:`fieldnotes.memory.story.HEADROOM_GB`)."""
        gpu = check_count("gpu_bytes", gpu_bytes, minimum=1)
        return self.total <= gpu - check_count("headroom_bytes", headroom_bytes, minimum=0)

    def as_gb(self) -> dict[str, float]:
        """The peak moment's lines in 10^9-byte GB (they add up to "total on GPU"), then the
        model states on the CPU."""
        names = {
            "optimizer_states": "optimizer states",
            "recomputed_layer": "recomputed layer",
            "logits": "logits and loss",
            "logit_gradient": "loss backward (2 fp32 logit-sized)",
            "gathered_layer": "gathered largest layer",
            "buckets": "gradient buckets",
            "head_gradient": "tied head gradient",
            "tied_gradient": "tied gradients and their sum",
            "fp32_gradients": "fp32 gradients (step)",
        }
        lines = {names.get(t, t): v / GB for t, v in self.at_peak().items()}
        return {**lines, "total on GPU": self.total / GB, "model states on CPU": self.cpu_model_states / GB}


def training_budget(
    parts: Iterable[Part],
    *,
    stage: int,
    n_gpus: int,
    precision: str = "bf16 mixed (Adam)",
    offload: str | None = None,
    activation_layers: int = 0,
    seq_len: int = 1,
    micro_batch: int = 1,
    hidden: int = 1,
    heads: int = 1,
    recompute: str = "none",
    vocab: int = 0,
    largest_layer_params: int = 0,
    architecture: str = "bloom",
    bucket_elements: int = 0,
) -> Budget:
    """Bytes per GPU for training ``parts`` at ZeRO ``stage`` on ``n_gpus`` (see the module doc).

    Activations are those of ``activation_layers`` layers of an ``architecture`` model (a
    model_type with fitted coefficients: "bloom", "gpt2") of width ``hidden`` with ``heads``
    heads; frozen layers that lie before every trained one need none, so count only layers that
    backward passes through. With a LoRA part they are its LoRA-adapted layers, of its
    ``lora_rank``. ``vocab`` (0: no output head on this GPU) sizes the logits;
    ``largest_layer_params`` the layer ZeRO-3 gathers whole; ``bucket_elements`` DeepSpeed's
    ``reduce_bucket_size`` (elements, stages 1-3). The tied-embedding gradients come from the
    trained parts' ``tied_params``.
    """
    from fieldnotes.memory.saved import layer_activation_bytes

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if recompute not in ("none", "full"):
        raise ValueError(f"recompute must be 'none' or 'full', got {recompute!r}")
    weight_b, grad_b, k = PRECISIONS[precision]
    parts = list(parts)
    if not parts:
        raise ValueError("parts is empty; give at least one Part")
    trainable = sum(p.trainable for p in parts)
    frozen = sum(p.frozen for p in parts)
    n_gpus = check_count("n_gpus", n_gpus, minimum=1)
    # validates stage and offload even when nothing is trained
    ms = model_states(
        max(trainable, 1), stage=stage, n_gpus=n_gpus, k=k, weight_bytes=weight_b,
        grad_bytes=grad_b, offload=offload,
    )
    if not trainable:
        ms = ModelStates(0, 0, 0)
    frozen_weights = weight_b * (shard(frozen, n_gpus) if stage >= 3 else frozen)
    frozen_on_cpu = offload == "parameters"
    vocab = check_count("vocab", vocab, minimum=0)
    largest = check_count("largest_layer_params", largest_layer_params, minimum=0)
    buckets = check_count("bucket_elements", bucket_elements, minimum=0)
    tied = sum(p.trained_tied for p in parts)
    hidden, heads = check_heads(hidden, heads)
    ranks = sorted({p.lora_rank for p in parts if p.mode == "lora"})
    if len(ranks) > 1:
        raise ValueError(f"parts must hold LoRA parts of one lora_rank (the activation layers'), got {ranks}")
    lora_rank = ranks[0] if ranks else 0
    layers = check_count("activation_layers", activation_layers, minimum=0)
    dtype = ACTIVATION_DTYPES[precision]

    def per_layer(mode: str) -> int:
        return layer_activation_bytes(
            architecture, hidden=hidden, heads=heads, seq_len=seq_len, micro_batch=micro_batch,
            dtype=dtype, recompute=mode, lora_rank=lora_rank,
        )

    full = recompute == "full" and layers > 0
    logits = LOGIT_BYTES * check_count("seq_len", seq_len, minimum=1) * check_count(
        "micro_batch", micro_batch, minimum=1) * vocab
    if stage >= 1:  # DeepSpeed's bucket; ZeRO-2 frees it between micro-batches, ZeRO-3 keeps it
        bucket_bytes = grad_b * buckets if trainable else 0
        bucket_phases = {1: ("backward", "first gradient", "backward end"),
                         2: ("first gradient", "backward end")}.get(stage, tuple(PHASE_TERMS))
    else:  # DDP's buckets: a second copy of every gradient, on more than one GPU
        bucket_bytes = grad_b * trainable if n_gpus > 1 else 0
        bucket_phases = tuple(PHASE_TERMS)
    mixed = weight_b == 2 and offload is None  # DeepSpeed steps an fp32 copy of the gradients
    stepped = trainable if stage == 0 else shard(trainable, n_gpus)
    return Budget(
        weights=ms.parameters + (0 if frozen_on_cpu else frozen_weights),
        gradients=ms.gradients,
        optimizer_states=ms.optimizer_states,
        activations=layers * per_layer(recompute) if layers else 0,
        recomputed_layer=per_layer("none") if full else 0,
        logits=logits,
        logit_gradient=2 * logits,
        gathered_layer=weight_b * largest if stage == 3 else 0,
        buckets=bucket_bytes,
        head_gradient=grad_b * tied,
        tied_gradient=3 * grad_b * tied,
        fp32_gradients=4 * stepped if (mixed and trainable) else 0,
        bucket_phases=bucket_phases,
        cpu_model_states=ms.cpu_total + (frozen_weights if frozen_on_cpu else 0),
        trainable_params=trainable,
        frozen_params=frozen,
    )
