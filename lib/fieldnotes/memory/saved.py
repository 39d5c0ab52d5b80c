"""Activation bytes one transformer layer saves for backward: measured on the CPU, and modelled.

Korthikanti et al. (2022) count 34·sbh + 5·as²b bytes per layer for a GPT layer with dropout and
16-bit activations. Real implementations differ (BLOOM has no dropout and a fp32 softmax, GPT-2's
``gelu_new`` saves several 4h-wide intermediates), so this module measures instead:
:func:`saved_activation_bytes` runs a ``transformers`` model of the config with 1 and with 2
layers forward on the CPU and counts the bytes of the distinct storages that autograd saves for
backward (parameters excluded); the difference is one layer's share. :func:`fit_activations` fits
the chapter's model α·sbh + β·as²b to such measurements, and :func:`predicted_activation_bytes`
evaluates it with the coefficients in :data:`ACTIVATION_COEFFICIENTS` (a test refits them).

LoRA (``lora_rank`` > 0) freezes every weight of the layer and adds rank-r adapters to
:data:`LORA_TARGETS`: a frozen matmul needs no weight gradient, so autograd keeps its weight but not
its input, and the layer saves about 10·sbh less (:data:`LORA_COEFFICIENTS`), plus each adapter's
r-wide intermediate.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from fieldnotes.memory.zero import check_count, check_heads

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}  # accepted as well
RECOMPUTE = ("none", "full")  # transformers has a switch for full recomputation only

# (model_type, dtype) -> (α per sbh, β per as²b), bytes per layer.
# Fitted by fit_activations to saved_activation_bytes at FIT_SHAPES on reference_config(model_type)
# (hidden 128, 4 heads; transformers 5, torch 2.13, default attention). α holds an 8·sb term of
# layer-norm statistics (8/h = 0.0625 per sbh at h = 128) and varies that little with h.
ACTIVATION_COEFFICIENTS = {
    ("bloom", "bfloat16"): (32.0625, 6.0),
    ("gpt2", "bfloat16"): (66.0625, 12.0),
    # fp32 BLOOM (PyTorch's fp32 engines in the measured run): 4-byte copies, and the softmax
    # output kept once (no bf16 copy); residuals below 1e-15 at the four shapes
    ("bloom", "float32"): (64.125, 4.0),
}
FIT_SHAPES = ((32, 2), (64, 1), (128, 2), (256, 1))  # (seq_len, micro_batch)

# LoRA on BLOOM's attention matrices (the chapter's exercise 4; peft's names), every weight frozen
LORA_TARGETS = {"bloom": ("query_key_value", "dense")}
# (model_type, dtype) -> (α, β) of the frozen, LoRA-adapted layer without the adapters' own
# r-wide intermediates (DTYPE_BYTES·s·b·r per target, added by layer_activation_bytes). Measured
# by saved_activation_bytes(..., lora_rank=r) at FIT_SHAPES (hidden 128, 4 heads, r = 8,
# residuals below 1e-15): the trained layer's 32.0625·sbh less the inputs only the weight
# gradients of the frozen MLP matmuls needed, the second layer norm's output (2·sbh) and the
# GELU's output (8·sbh); the attention matmuls' inputs stay, read by their adapters.
LORA_COEFFICIENTS = {("bloom", "bfloat16"): (22.0625, 6.0)}


def reference_config(model_type: str, *, hidden: int = 128, heads: int = 4, vocab: int = 256):
    """A small ``transformers`` config of ``model_type`` ("bloom" or "gpt2") for measuring."""
    from transformers import BloomConfig, GPT2Config

    check_heads(hidden, heads)
    if model_type == "bloom":
        return BloomConfig(vocab_size=vocab, hidden_size=hidden, n_layer=1, n_head=heads)
    if model_type == "gpt2":
        return GPT2Config(
            vocab_size=vocab,
            n_embd=hidden,
            n_layer=1,
            n_head=heads,
            n_positions=1024,
            bos_token_id=0,
            eos_token_id=0,
        )
    raise ValueError(f"model_type must be 'bloom' or 'gpt2', got {model_type!r}")


def check_dtype(dtype) -> str:
    """``dtype`` as its torch name ("bfloat16", "float16", "float32"); "bf16", "fp16" and "fp32"
    are accepted for them; anything else is a ValueError naming ``dtype``."""
    name = DTYPE_ALIASES.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if name not in DTYPE_BYTES:
        raise ValueError(
            f"dtype must be one of {sorted(DTYPE_BYTES)} (or {sorted(DTYPE_ALIASES)}), got {dtype!r}"
        )
    return name


def _check(config, seq_len, micro_batch, dtype, recompute, lora_rank=0):
    import transformers

    if not isinstance(config, transformers.PretrainedConfig):
        raise TypeError(
            f"config must be a transformers.PretrainedConfig, got {type(config).__name__}"
        )
    dtype = check_dtype(dtype)
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {RECOMPUTE}, got {recompute!r}")
    check_heads(config.hidden_size, config.num_attention_heads)
    r = check_count("lora_rank", lora_rank, minimum=0)
    if r and config.model_type not in LORA_TARGETS:
        raise ValueError(
            f"lora_rank > 0 needs a model_type with LoRA targets {sorted(LORA_TARGETS)}, "
            f"got {config.model_type!r}"
        )
    s = check_count("seq_len", seq_len, minimum=1)
    return s, check_count("micro_batch", micro_batch, minimum=1), dtype, r


def _saved_bytes(model, **inputs) -> int:
    """Bytes of distinct non-parameter storages autograd saves in one forward of ``model``.

    The pack hook returns None, so the graph keeps nothing for a backward that never runs; the
    storages are held in ``held`` only until the forward returns (as autograd would hold them until
    backward), so that a freed address reused by a later tensor is not mistaken for the same
    storage. Nothing survives the call.
    """
    from torch.autograd.graph import saved_tensors_hooks

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    held = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            held[storage.data_ptr()] = storage
        return None

    def unpack(_):
        raise RuntimeError("backward through a measured forward is not supported")

    try:
        with saved_tensors_hooks(pack, unpack):
            model(**inputs)
        return sum(s.nbytes() for s in held.values())
    finally:
        held.clear()


def saved_activation_bytes(
    config, *, seq_len, micro_batch, dtype="bfloat16", recompute="none", lora_rank=0
) -> int:
    """Bytes one layer of ``config``'s model saves for backward, measured on the CPU.

    Builds the model (``AutoModel``, training mode, in ``dtype``) with 1 and with 2 layers, runs a
    forward on a (``micro_batch``, ``seq_len``) batch of token ids and returns the difference of
    the saved bytes: embeddings, masks and the final layer norm cancel. ``recompute="full"`` turns
    on transformers' (reentrant) gradient checkpointing, which saves each layer's input only.
    ``lora_rank`` > 0 freezes every weight and wraps :data:`LORA_TARGETS` in rank-``lora_rank``
    adapters (see :func:`_add_lora`); the second layer's input then needs a gradient through the
    first layer's adapters, as in LoRA training.
    """
    from transformers import AutoModel

    s, b, dtype, r = _check(config, seq_len, micro_batch, dtype, recompute, lora_rank)
    ids = _token_ids(config, s, b)
    saved = []
    for layers in (1, 2):
        model = _build(AutoModel, config, layers, dtype)
        if r:
            _add_lora(model, LORA_TARGETS[config.model_type], r)
        if recompute == "full":
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": True}
            )
        saved.append(_saved_bytes(model, input_ids=ids))
    return saved[1] - saved[0]


def saved_loss_bytes(config, *, seq_len, micro_batch, dtype="bfloat16") -> int:
    """Bytes the output head and the cross-entropy loss save for backward, measured on the CPU.

    The causal-LM model with labels minus the same model without its head (one layer each).
    transformers upcasts the logits to fp32 for the loss, whose log-softmax output is kept:
    about 4·s·b·V bytes, plus the head's 16-bit input and the labels.
    """
    from transformers import AutoModel, AutoModelForCausalLM

    s, b, dtype, _ = _check(config, seq_len, micro_batch, dtype, "none")
    ids = _token_ids(config, s, b)
    with_loss = _saved_bytes(
        _build(AutoModelForCausalLM, config, 1, dtype), input_ids=ids, labels=ids
    )
    return with_loss - _saved_bytes(_build(AutoModel, config, 1, dtype), input_ids=ids)


def _token_ids(config, s: int, b: int):
    import torch

    return torch.randint(0, config.vocab_size, (b, s), generator=torch.Generator().manual_seed(0))


def _build(auto_class, config, layers: int, dtype: str):
    """``auto_class``'s model of ``config`` with ``layers`` layers, in ``dtype``, training mode."""
    import torch

    cfg = copy.deepcopy(config)
    cfg.num_hidden_layers = layers
    cfg.use_cache = False  # training keeps no KV cache (with one, BLOOM at b = 1 saves views
    # into its fused QKV buffer and keeps all of it: +4·sbh)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return auto_class.from_config(cfg).to(getattr(torch, dtype)).train()


def _add_lora(model, targets: tuple[str, ...], rank: int) -> None:
    """Freeze ``model``'s weights and wrap each ``nn.Linear`` named in ``targets`` so that it
    returns base(x) + B(A(x)): peft's LoRA with its default ``lora_dropout=0`` (no dropout mask;
    the scale, which saves nothing, left out). A and B are trained, in the base weight's dtype."""
    import torch

    class LoRALinear(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear):
            super().__init__()
            self.base = base
            kw = {"bias": False, "dtype": base.weight.dtype}
            self.lora_a = torch.nn.Linear(base.in_features, rank, **kw)
            self.lora_b = torch.nn.Linear(rank, base.out_features, **kw)

        def forward(self, x):
            return self.base(x) + self.lora_b(self.lora_a(x))

    model.requires_grad_(False)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if name in targets and isinstance(child, torch.nn.Linear):
                setattr(module, name, LoRALinear(child))


def _features(config, s: int, b: int) -> tuple[int, int]:
    h, a = config.hidden_size, config.num_attention_heads
    return s * b * h, a * s * s * b


@dataclass(frozen=True)
class ActivationFit:
    """α·sbh + β·as²b bytes per layer, fitted, and its residuals per shape."""

    model_type: str
    alpha: float
    beta: float
    shapes: tuple[tuple[int, int], ...]
    measured: tuple[int, ...]
    fitted: tuple[float, ...]

    def table(self):
        """The fit's shapes, measured and fitted bytes and relative residuals (pandas)."""
        import pandas as pd

        t = pd.DataFrame(self.shapes, columns=["seq_len", "micro_batch"])
        t["measured_bytes"] = self.measured
        t["fitted_bytes"] = self.fitted
        t["residual"] = t.fitted_bytes / t.measured_bytes - 1
        return t


def fit_activations(config, shapes=FIT_SHAPES, *, dtype="bfloat16", lora_rank=0) -> ActivationFit:
    """Least-squares fit of the per-layer model to :func:`saved_activation_bytes` at ``shapes``.

    ``shapes`` are (seq_len, micro_batch) pairs, at least three with two different seq_len (the
    two terms grow as s and as s²). With ``lora_rank`` > 0 the adapters' r-wide intermediates
    are taken off each measurement first, so that the fit is :data:`LORA_COEFFICIENTS`' form.
    """
    import numpy as np

    shapes = tuple((int(s), int(b)) for s, b in shapes)
    if len(shapes) < 3 or len({s for s, _ in shapes}) < 2:
        raise ValueError(
            f"shapes must hold at least 3 (seq_len, micro_batch) pairs, two seq_len, got {shapes}"
        )
    adapters = _adapter_bytes(config.model_type, check_dtype(dtype), lora_rank)
    measured = tuple(
        saved_activation_bytes(config, seq_len=s, micro_batch=b, dtype=dtype, lora_rank=lora_rank)
        - adapters * s * b
        for s, b in shapes
    )
    x = np.array([_features(config, s, b) for s, b in shapes], dtype=float)
    coef, *_ = np.linalg.lstsq(x, np.array(measured, dtype=float), rcond=None)
    return ActivationFit(
        config.model_type,
        *(float(c) for c in coef),
        shapes,
        measured,
        tuple(float(v) for v in x @ coef),
    )


def predicted_activation_bytes(
    config, *, seq_len, micro_batch, dtype="bfloat16", recompute="none", lora_rank=0
) -> int:
    """Bytes one layer of ``config``'s model saves for backward, from the fitted coefficients.

    ``recompute="full"`` keeps only the layer's input, s·b·h elements of ``dtype``;
    ``lora_rank`` > 0: the frozen layer with LoRA adapters (:data:`LORA_COEFFICIENTS`).
    """
    s, b, dtype, r = _check(config, seq_len, micro_batch, dtype, recompute, lora_rank)
    return layer_activation_bytes(
        config.model_type, hidden=config.hidden_size, heads=config.num_attention_heads,
        seq_len=s, micro_batch=b, dtype=dtype, recompute=recompute, lora_rank=r,
    )


def _adapter_bytes(model_type: str, dtype: str, lora_rank: int) -> int:
    """Bytes per token (s·b) of the LoRA adapters' saved r-wide intermediates A(x), one per target."""
    if not lora_rank:
        return 0
    if model_type not in LORA_TARGETS:
        raise ValueError(f"no LoRA targets for model_type {model_type!r}; known: {sorted(LORA_TARGETS)}")
    return DTYPE_BYTES[dtype] * len(LORA_TARGETS[model_type]) * lora_rank


def layer_activation_bytes(
    model_type: str, *, hidden, heads, seq_len, micro_batch, dtype="bfloat16", recompute="none",
    lora_rank=0,
) -> int:
    """:func:`predicted_activation_bytes` from the shape alone (no config): bytes one layer of a
    ``model_type`` model ("bloom", "gpt2") of width ``hidden`` with ``heads`` heads saves for
    backward at ``seq_len`` tokens x ``micro_batch`` samples, from :data:`ACTIVATION_COEFFICIENTS`
    (or, with ``lora_rank`` > 0, the frozen LoRA-adapted layer's :data:`LORA_COEFFICIENTS` plus
    the adapters' intermediates).
    """
    h, a = check_heads(hidden, heads)
    s = check_count("seq_len", seq_len, minimum=1)
    b = check_count("micro_batch", micro_batch, minimum=1)
    dtype = check_dtype(dtype)
    r = check_count("lora_rank", lora_rank, minimum=0)
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {RECOMPUTE}, got {recompute!r}")
    if recompute == "full":
        return DTYPE_BYTES[dtype] * s * b * h
    key = (model_type, dtype)
    table = LORA_COEFFICIENTS if r else ACTIVATION_COEFFICIENTS
    if key not in table:
        kind = "LoRA " if r else ""
        raise ValueError(
            f"no fitted {kind}coefficients for (model_type, dtype) = {key}; fitted: {sorted(table)}"
        )
    alpha, beta = table[key]
    return round(alpha * s * b * h + beta * a * s * s * b) + _adapter_bytes(model_type, dtype, r) * s * b
