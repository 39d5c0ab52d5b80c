"""The whole medical VLM: (frozen) vision encoder -> fusion -> Bloom language model.

How the image reaches the language model depends on the fusion kind:

* **prefix** (``qformer``, ``linear``): the fusion turns the image tokens into ``p`` vectors in
  the LM's embedding space; they are concatenated in front of the text embeddings and the LM
  runs on ``inputs_embeds``. The attention mask gets ``p`` ones and the labels ``p`` ignored
  positions (-100) in front, so no loss is taken on the image.
* **gated cross-attention** (``xattn``): the LM's own forward is left unchanged; a forward
  *pre-hook* on every ``every``-th decoder block replaces that block's input hidden states ``x``
  with ``GatedCrossAttention(x, vision)`` before the block runs. The hooks read the image tokens
  of the current call from ``MedVLM._vision``, which ``forward`` sets for the duration of one LM
  call only (and clears in ``finally``), so a call without an image never sees a stale one.
* **none** (the question-only control): no image tokens at all; the LM reads only the text.

Every tensor the model creates (masks, padding labels, decoded ids) is created on the device of
the tensors it is given, so the same code runs on a CPU, a GPU or the ``meta`` device.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from fieldnotes.vlm.fusion import FusionConfig, build_fusion

LORA_TARGETS: tuple[str, ...] = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")


class MedVLM(nn.Module):
    """A VLM over precomputed image tokens (``features``) or raw ``pixels`` through ``encoder``."""

    def __init__(self, lm, fusion: FusionConfig, d_vision: int, encoder: nn.Module | None = None):
        super().__init__()
        self.lm = lm
        self.fusion_cfg = fusion
        self.encoder = encoder
        if encoder is not None:
            encoder.requires_grad_(False)
        blocks = self._blocks()
        d_model = lm.config.hidden_size
        self.fusion = build_fusion(fusion, d_vision, d_model, len(blocks))
        self._vision = None
        if fusion.kind == "xattn":
            for j, i in enumerate(range(0, len(blocks), fusion.every)):
                blocks[i].register_forward_pre_hook(self._make_hook(j), with_kwargs=True)

    def _blocks(self):
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        return base.transformer.h

    def _make_hook(self, j: int):
        """Pre-hook of decoder block ``j * every``: its input ``x`` becomes ``fusion[j](x, vision)``."""

        def hook(module, args, kwargs):
            if self._vision is None:
                return None
            return (self.fusion[j](args[0], self._vision),) + tuple(args[1:]), kwargs

        return hook

    def vision_tokens(self, features=None, pixels=None):
        """Image tokens (n, T, D) from ``features`` or by running the frozen encoder on ``pixels``;
        None for the question-only model."""
        if self.fusion_cfg.kind == "none":
            return None
        if features is not None:
            return features
        if pixels is None or self.encoder is None:
            raise ValueError("give features, or pixels together with an encoder")
        with torch.no_grad():
            return self.encoder(pixels)

    def forward(self, input_ids, attention_mask=None, labels=None, features=None, pixels=None):
        """LM outputs (logits over prefix + text positions, loss when ``labels`` are given)."""
        vision = self.vision_tokens(features, pixels)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kind = self.fusion_cfg.kind
        if kind == "none":
            return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        if kind == "xattn":
            self._vision = vision
            try:
                return self.lm(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            finally:
                self._vision = None
        prefix = self.fusion(vision)
        embeds = self.lm.get_input_embeddings()(input_ids)
        inputs = torch.cat([prefix.to(embeds.dtype), embeds], dim=1)
        n, p = prefix.shape[:2]
        ones = torch.ones(n, p, dtype=attention_mask.dtype, device=attention_mask.device)
        mask = torch.cat([ones, attention_mask], dim=1)
        if labels is not None:
            ignore = torch.full((n, p), -100, dtype=labels.dtype, device=labels.device)
            labels = torch.cat([ignore, labels], dim=1)
        return self.lm(inputs_embeds=inputs, attention_mask=mask, labels=labels)

    @torch.no_grad()
    def greedy_tokens(self, prompt_ids, features=None, pixels=None, max_new_tokens: int = 4):
        """Greedy continuation of equal-length prompts (n, L): new token ids (n, max_new_tokens),
        on the prompts' device, with no host synchronisation inside the loop."""
        vision = self.vision_tokens(features, pixels)
        ids = prompt_ids
        for _ in range(max_new_tokens):
            nxt = self.forward(ids, features=vision).logits[:, -1].argmax(-1)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
        return ids[:, prompt_ids.shape[1] :]

    def generate(
        self, prompt_ids, features=None, pixels=None, max_new_tokens: int = 4, eos_id: int = 3
    ) -> list[list[int]]:
        """Greedy decoding for equal-length prompts (n, L); the new token ids per row, cut at EOS."""
        rows = self.greedy_tokens(prompt_ids, features, pixels, max_new_tokens).tolist()
        return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]


def set_stage(model: MedVLM, stage: int, lora_r: int = 0) -> list:
    """Freeze for a stage and return the trainable parameters.

    Stage 1 (alignment): only the fusion trains (nothing for the question-only model). Stage 2
    (VQA tuning): fusion plus the LM, either fully or through LoRA adapters of rank ``lora_r``
    (peft) when ``lora_r > 0``; ``lora_r`` must be an int >= 0 (0: full fine-tuning).
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    if isinstance(lora_r, bool) or not isinstance(lora_r, numbers.Integral) or lora_r < 0:
        raise ValueError(f"lora_r must be an int >= 0 (0: fine-tune the whole LM), got {lora_r!r}")
    model.lm.requires_grad_(False)
    model.fusion.requires_grad_(True)
    if stage == 2:
        if lora_r > 0:
            from peft import LoraConfig, get_peft_model

            if not hasattr(model.lm, "peft_config"):
                cfg = LoraConfig(
                    r=int(lora_r),
                    lora_alpha=2 * int(lora_r),
                    lora_dropout=0.0,
                    target_modules=list(LORA_TARGETS),
                )
                model.lm = get_peft_model(model.lm, cfg)
            for n, p in model.lm.named_parameters():
                p.requires_grad_("lora_" in n)
        else:
            model.lm.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen = {id(p): p for p in module.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in seen.values())
