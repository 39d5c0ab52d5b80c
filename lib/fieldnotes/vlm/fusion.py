"""The three ways of joining image tokens to the language model, chosen by one ``FusionConfig``.

1. ``xattn``: Flamingo-style gated cross-attention blocks inserted before every ``every``-th
   language-model layer; ``tanh`` gates start at 0, so the untrained model *is* the language model.
2. ``qformer``: a BLIP-2 Q-Former (``Blip2QFormerModel``) whose learned queries attend to the image
   tokens; their outputs are projected into the LM's embedding space and prepended to the text.
3. ``linear``: a LLaVA-style MLP projector from every image token into the LM's embedding space.

``none`` is the blind control, not a fusion: the language model gets zero image tokens and is
trained on the questions alone (``BLIND``; it is not part of ``FUSIONS`` or the ablation grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fieldnotes.vlm.language import require_divisible, require_positive_ints

FUSIONS: tuple[str, ...] = ("xattn", "qformer", "linear")
#: The question-only control: no image tokens reach the language model.
BLIND = "none"


@dataclass(frozen=True)
class FusionConfig:
    """Fusion kind and its sizes (queries, Q-Former layers and width, heads, cross-attention interval;
    ints >= 1, the Q-Former width a multiple of the heads)."""

    kind: str = "qformer"
    every: int = 1
    num_queries: int = 8
    qformer_layers: int = 2
    qformer_hidden: int = 64
    heads: int = 4

    def __post_init__(self):
        if self.kind not in (*FUSIONS, BLIND):
            raise ValueError(f"kind must be one of {(*FUSIONS, BLIND)}, got {self.kind!r}")
        require_positive_ints(
            self, ("every", "num_queries", "qformer_layers", "qformer_hidden", "heads")
        )
        require_divisible("qformer_hidden", self.qformer_hidden, self.heads)


class GatedCrossAttention(nn.Module):
    """Flamingo's block: x + tanh(a) * xattn(LN x, v), then x + tanh(b) * FFW(LN x); a = b = 0 at init."""

    def __init__(self, d_model: int, d_vision: int, heads: int):
        super().__init__()
        self.ln_attn = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(
            d_model, heads, kdim=d_vision, vdim=d_vision, batch_first=True
        )
        self.ln_ffw = nn.LayerNorm(d_model)
        self.ffw = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )
        self.gate_attn = nn.Parameter(torch.zeros(1))
        self.gate_ffw = nn.Parameter(torch.zeros(1))

    def forward(self, x, vision):
        a, _ = self.attn(self.ln_attn(x), vision, vision, need_weights=False)
        x = x + torch.tanh(self.gate_attn) * a
        return x + torch.tanh(self.gate_ffw) * self.ffw(self.ln_ffw(x))


class QFormerBridge(nn.Module):
    """Learned queries -> ``Blip2QFormerModel`` (cross-attending to image tokens) -> linear into LM space."""

    def __init__(self, cfg: FusionConfig, d_vision: int, d_model: int):
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel

        qc = Blip2QFormerConfig(
            vocab_size=2, hidden_size=cfg.qformer_hidden, num_hidden_layers=cfg.qformer_layers,
            num_attention_heads=cfg.heads, intermediate_size=2 * cfg.qformer_hidden, cross_attention_frequency=1,
            encoder_hidden_size=d_vision, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            max_position_embeddings=8,
        )  # fmt: skip
        self.qformer = Blip2QFormerModel(qc)
        self.queries = nn.Parameter(torch.randn(1, cfg.num_queries, cfg.qformer_hidden) * 0.02)
        self.proj = nn.Linear(cfg.qformer_hidden, d_model)

    def forward(self, vision):
        q = self.queries.expand(vision.shape[0], -1, -1)
        mask = torch.ones(vision.shape[:2], dtype=torch.long, device=vision.device)
        out = self.qformer(
            query_embeds=q, encoder_hidden_states=vision, encoder_attention_mask=mask
        )
        return self.proj(out.last_hidden_state)


class LinearProjector(nn.Module):
    """LLaVA-style two-layer MLP applied to every image token."""

    def __init__(self, d_vision: int, d_model: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_vision, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )

    def forward(self, vision):
        return self.net(vision)


def build_fusion(cfg: FusionConfig, d_vision: int, d_model: int, n_layers: int) -> nn.Module:
    """The fusion module: a ModuleList of gated blocks (one per ``every`` layers), a prefix bridge,
    or an empty ModuleList for the question-only control (``BLIND``)."""
    if cfg.kind == BLIND:
        return nn.ModuleList()
    if cfg.kind == "xattn":
        return nn.ModuleList(
            GatedCrossAttention(d_model, d_vision, cfg.heads) for _ in range(0, n_layers, cfg.every)
        )
    if cfg.kind == "qformer":
        return QFormerBridge(cfg, d_vision, d_model)
    return LinearProjector(d_vision, d_model)
