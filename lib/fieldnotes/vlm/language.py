"""The language model: a word-level tokenizer trained offline and a small ``BloomForCausalLM``.

The *general* model is pre-trained on everyday text with question-answer lines (the BloomZ
analogue); the *medical* model continues from it on radiology reports (the RadBloomZ analogue).
Both share one tokenizer, so the ablation changes weights, not vocabularies.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")


def require_positive_ints(config: object, names: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming the first field of ``config`` in ``names`` that is not an int >= 1
    (bools refused); used by the model-size configs."""
    for name in names:
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")


def require_divisible(width_name: str, width: int, heads: int) -> None:
    """Raise ``ValueError`` unless the width ``width_name`` splits evenly over ``heads`` attention heads."""
    if width % heads:
        raise ValueError(f"{width_name} ({width}) must be a multiple of heads ({heads})")


@dataclass(frozen=True)
class LanguageConfig:
    """Size of the Bloom language model (hidden width in units, layers, heads; ints >= 1, the width a
    multiple of the heads)."""

    hidden: int = 64
    layers: int = 4
    heads: int = 4

    def __post_init__(self):
        require_positive_ints(self, ("hidden", "layers", "heads"))
        require_divisible("hidden", self.hidden, self.heads)


def train_tokenizer(texts: list[str], vocab_size: int = 2000):
    """Train a word-level tokenizer on ``texts`` (lower-cased, punctuation split) and wrap it for transformers."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("texts is empty; expected at least one line to train the tokenizer on")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"[.,?:;!]"), "isolated")]
    )
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )


def build_language_model(vocab_size: int, cfg: LanguageConfig = LanguageConfig()):
    """A randomly initialised ``BloomForCausalLM`` of the given size (no dropout, tied head)."""
    from transformers import BloomConfig, BloomForCausalLM

    if vocab_size < len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be >= {len(SPECIAL_TOKENS)}, got {vocab_size}")
    config = BloomConfig(
        vocab_size=vocab_size, hidden_size=cfg.hidden, n_layer=cfg.layers, n_head=cfg.heads,
        hidden_dropout=0.0, attention_dropout=0.0, pad_token_id=0, bos_token_id=2, eos_token_id=3,
    )  # fmt: skip
    return BloomForCausalLM(config)


def encode_texts(tokenizer, texts: list[str], max_len: int):
    """Token ids with EOS appended, right-padded: (input_ids, attention_mask, labels) long tensors."""
    import torch

    ids = [
        tokenizer.encode(t, add_special_tokens=False)[: max_len - 1] + [tokenizer.eos_token_id]
        for t in texts
    ]
    n = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), n), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.long)
    for r, row in enumerate(ids):
        input_ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    labels = input_ids.masked_fill(mask == 0, -100)
    return input_ids, mask, labels


def pretrain_language_model(
    model,
    tokenizer,
    texts: list[str],
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    max_len: int = 48,
    desc: str = "LM",
    progress: bool = True,
) -> list[float]:
    """Causal-LM training on ``texts`` for ``steps`` AdamW steps (cosine schedule); returns the losses.
    ``progress``: show a progress bar."""
    from fieldnotes.vlm.train import TrainConfig, train_loop

    input_ids, mask, labels = encode_texts(tokenizer, texts, max_len)

    def batch(step: int):
        idx = np.random.default_rng([seed, step]).integers(0, len(texts), batch_size)
        return {"input_ids": input_ids[idx], "attention_mask": mask[idx], "labels": labels[idx]}

    def loss_fn(b):
        return model(**b).loss

    cfg = TrainConfig(steps=steps, lr=lr, seed=seed, progress=progress)
    return train_loop(
        [p for p in model.parameters() if p.requires_grad], loss_fn, batch, cfg, desc=desc
    ).losses
