"""Activation memory of a transformer layer after Korthikanti et al. (2022), "Reducing activation
recomputation in large transformer models", section 4 (no tensor or sequence parallelism).

With 16-bit activations and s = sequence length, b = micro-batch, h = hidden size, a = heads, one
layer stores s·b·h·(34 + 5·a·s/h) bytes for the backward pass; selective recomputation (recompute
the attention scores, softmax and dropout) leaves 34·s·b·h; full recomputation keeps only the
layer's 16-bit input, 2·s·b·h, and recomputes the rest during backward.
"""

from __future__ import annotations

from fieldnotes.memory.zero import check_count, check_heads

RECOMPUTE = ("none", "selective", "full")


def activation_bytes_per_layer(seq_len, micro_batch, hidden, heads, recompute: str = "none") -> int:
    """Bytes of activations one transformer layer keeps for backward (16-bit activations)."""
    s = check_count("seq_len", seq_len, minimum=1)
    b = check_count("micro_batch", micro_batch, minimum=1)
    h, a = check_heads(hidden, heads)
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {RECOMPUTE}, got {recompute!r}")
    if recompute == "full":
        return 2 * s * b * h
    if recompute == "selective":
        return 34 * s * b * h
    # s·b·h·(34 + 5·a·s/h) = 34·s·b·h + 5·a·s²·b, exact in integers
    return 34 * s * b * h + 5 * a * s * s * b


def activation_bytes(seq_len, micro_batch, hidden, heads, layers, recompute: str = "none") -> int:
    """Bytes of activations of ``layers`` identical transformer layers (16-bit activations)."""
    layers = check_count("layers", layers, minimum=0)
    return layers * activation_bytes_per_layer(seq_len, micro_batch, hidden, heads, recompute)


def first_seq_len_over(budget_bytes, bytes_at) -> int:
    """The shortest sequence length (tokens) s with ``bytes_at(s)`` > ``budget_bytes``, for a
    ``bytes_at`` that grows strictly with s (activation bytes of some model)."""
    budget = check_count("budget_bytes", budget_bytes, minimum=0)
    hi = 1
    while bytes_at(hi) <= budget:
        hi *= 2
    lo = hi // 2 + 1 if hi > 1 else 1
    while lo < hi:
        mid = (lo + hi) // 2
        if bytes_at(mid) > budget:
            hi = mid
        else:
            lo = mid + 1
    return lo


def crossover_seq_len(budget_bytes, micro_batch, hidden, heads, layers, recompute: str = "none"):
    """The shortest sequence length (tokens) at which ``layers`` layers' activations (Korthikanti
    et al.) exceed ``budget_bytes``."""
    layers = check_count("layers", layers, minimum=1)
    return first_seq_len_over(
        budget_bytes, lambda s: activation_bytes(s, micro_batch, hidden, heads, layers, recompute)
    )
