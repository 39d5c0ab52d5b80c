"""A training budget per GPU: trained, frozen and LoRA-adapted parts, ZeRO, offload, activations.

- A frozen part costs only its weights (no gradients, no optimizer states); ZeRO-3 shards those
  weights too, stages 0-2 replicate them.
- LoRA of rank r on a d_in -> d_out matrix adds r·(d_in + d_out) trainable parameters (the A and
  B factors, Hu et al. 2021) and freezes the matrix itself.
- Working memory of a step (bytes that exist at the backward's peak besides the stored
  activations): under full recomputation one layer's full activations while it is recomputed;
  with ``vocab`` the logits the loss keeps, :data:`LOGIT_BYTES` per token per vocabulary entry
  (transformers' fp32 log-softmax, measured by :func:`fieldnotes.memory.saved_loss_bytes`); at
  ZeRO-3 the largest layer gathered whole, its 16-bit weights and gradients (DeepSpeed's 4 bytes
  per parameter of it).
- Offload follows :func:`fieldnotes.memory.model_states`: ``"optimizer"`` (ZeRO-Offload, Ren et
  al. 2021) moves the gradient and optimizer-state partitions to CPU memory, the GPU keeps the
  16-bit weights; ``"parameters"`` (stage 3) moves the weight shards too, frozen ones included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fieldnotes.memory.activations import activation_bytes
from fieldnotes.memory.zero import GB, ModelStates, check_count, model_states, shard

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
    parameters (see :func:`lora_parameters`) are added.
    """

    name: str
    params: int
    mode: str = "trained"
    lora_params: int = 0

    def __post_init__(self):
        check_count("params", self.params, minimum=0)
        check_count("lora_params", self.lora_params, minimum=0)
        if self.mode not in MODES:
            raise ValueError(
                f"mode of part {self.name!r} must be one of {MODES}, got {self.mode!r}"
            )
        if self.mode != "lora" and self.lora_params:
            raise ValueError(
                f"lora_params of part {self.name!r} must be 0 unless mode='lora', got {self.lora_params}"
            )

    @property
    def trainable(self) -> int:
        """Parameters that get gradients and optimizer states."""
        return self.params if self.mode == "trained" else self.lora_params

    @property
    def frozen(self) -> int:
        """Parameters that are only read (weights only)."""
        return 0 if self.mode == "trained" else self.params


@dataclass(frozen=True)
class Budget:
    """Bytes per GPU (and per GPU's share of CPU memory) for one training setting."""

    weights: int
    gradients: int
    optimizer_states: int
    activations: int
    recomputed_layer: int
    logits: int
    gathered_layer: int
    cpu_model_states: int
    trainable_params: int
    frozen_params: int

    @property
    def model_states(self) -> int:
        """Weights + gradients + optimizer states kept on the GPU (bytes)."""
        return self.weights + self.gradients + self.optimizer_states

    @property
    def working(self) -> int:
        """Bytes of the step's working memory: recomputed layer, logits, gathered layer."""
        return self.recomputed_layer + self.logits + self.gathered_layer

    @property
    def total(self) -> int:
        """Everything on the GPU: model states + activations + working memory (bytes)."""
        return self.model_states + self.activations + self.working

    def fits(self, gpu_bytes: int) -> bool:
        """Whether the total fits in ``gpu_bytes`` (no headroom for buffers or fragmentation)."""
        return self.total <= gpu_bytes

    def as_gb(self) -> dict[str, float]:
        """The budget's lines in 10^9-byte GB."""
        return {
            "weights": self.weights / GB,
            "gradients": self.gradients / GB,
            "optimizer states": self.optimizer_states / GB,
            "activations": self.activations / GB,
            "recomputed layer": self.recomputed_layer / GB,
            "logits and loss": self.logits / GB,
            "gathered largest layer": self.gathered_layer / GB,
            "total on GPU": self.total / GB,
            "model states on CPU": self.cpu_model_states / GB,
        }


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
) -> Budget:
    """Bytes per GPU for training ``parts`` at ZeRO ``stage`` on ``n_gpus`` (see the module doc).

    Activations are those of ``activation_layers`` transformer layers of width ``hidden`` with
    ``heads`` heads (Korthikanti et al. 2022); frozen layers that lie before every trained one
    need none, so count only layers that backward passes through. ``vocab`` (0: no output head
    on this GPU) sizes the logits; ``largest_layer_params`` the layer ZeRO-3 gathers whole.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
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
    full = recompute == "full" and activation_layers > 0
    return Budget(
        weights=ms.parameters + (0 if frozen_on_cpu else frozen_weights),
        gradients=ms.gradients,
        optimizer_states=ms.optimizer_states,
        activations=activation_bytes(
            seq_len, micro_batch, hidden, heads, activation_layers, recompute
        ),
        recomputed_layer=(
            activation_bytes(seq_len, micro_batch, hidden, heads, 1, "none") if full else 0
        ),
        logits=LOGIT_BYTES * seq_len * micro_batch * vocab,
        gathered_layer=(weight_b + grad_b) * largest if stage == 3 else 0,
        cpu_model_states=ms.cpu_total + (frozen_weights if frozen_on_cpu else 0),
        trainable_params=trainable,
        frozen_params=frozen,
    )
