"""fieldnotes.memory.counting: exact parameter counts from configs on the meta device."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldnotes.memory import (
    biomedclip_vit_config,
    blip2_qformer_config,
    bloomz_7b1_config,
    count_parameters,
    largest_layer_parameters,
    linear_shapes,
)


def bloom_closed_form(vocab: int, h: int, layers: int, tied: bool = True) -> int:
    """BLOOM by hand: embeddings + their LayerNorm, 12h² + 13h per block, final LayerNorm."""
    return vocab * h * (1 if tied else 2) + 2 * h + layers * (12 * h * h + 13 * h) + 2 * h


def vit_closed_form(
    h: int, layers: int, mlp: int, patch: int, image: int, channels: int = 3
) -> int:
    """ViTModel (with pooler) by hand."""
    n_patches = (image // patch) ** 2
    embed = channels * patch * patch * h + h + h + (n_patches + 1) * h  # conv, bias, cls, positions
    block = 4 * (h * h + h) + (h * mlp + mlp) + (mlp * h + h) + 4 * h
    return embed + layers * block + 2 * h + (h * h + h)  # final LayerNorm, pooler


def test_bloomz_7b1_counts_exactly():
    cfg = bloomz_7b1_config()
    assert (cfg.vocab_size, cfg.hidden_size, cfg.n_layer, cfg.n_head) == (250880, 4096, 30, 32)
    assert count_parameters(cfg) == 7_069_016_064 == bloom_closed_form(250880, 4096, 30)
    # the largest single module is the (tied) embedding matrix
    assert largest_layer_parameters(cfg) == 250880 * 4096


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    vocab=st.integers(16, 5000),
    heads=st.integers(1, 8),
    head_dim=st.integers(1, 16),
    layers=st.integers(1, 4),
    tied=st.booleans(),
)
def test_bloom_counts_agree_with_the_closed_form(vocab, heads, head_dim, layers, tied):
    from transformers import BloomConfig

    h = heads * head_dim
    cfg = BloomConfig(
        vocab_size=vocab, hidden_size=h, n_layer=layers, n_head=heads, tie_word_embeddings=tied
    )
    assert count_parameters(cfg) == bloom_closed_form(vocab, h, layers, tied)


def test_vit_and_qformer_counts():
    from transformers import ViTModel

    cfg = biomedclip_vit_config()
    assert count_parameters(cfg) == vit_closed_form(768, 12, 3072, 16, 224)
    assert count_parameters(cfg, model_class=ViTModel) == count_parameters(cfg)
    # BiomedCLIP's tower has no pooler: the chapter counts ViTModel without it
    from fieldnotes.memory import biomedclip_image_tower

    assert count_parameters(cfg, model_class=biomedclip_image_tower) == (
        vit_closed_form(768, 12, 3072, 16, 224) - (768 * 768 + 768)
    )
    qformer = count_parameters(blip2_qformer_config())
    # BERT-base width: 12 self-attention + query-MLP blocks and 6 cross-attention blocks
    # (keys/values from the 768-wide image features); transformers keeps only the query path
    h, mlp = 768, 3072
    attn = 4 * (h * h + h) + 2 * h
    ffn = (h * mlp + mlp) + (mlp * h + h) + 2 * h
    expected = 2 * h + 12 * (attn + ffn) + 6 * attn
    assert qformer == expected


def test_linear_shapes_and_trainable_only():
    from transformers import BloomConfig

    cfg = BloomConfig(vocab_size=100, hidden_size=32, n_layer=2, n_head=4)
    assert linear_shapes(cfg, targets=("query_key_value",)) == [(32, 96), (32, 96)]
    assert len(linear_shapes(cfg)) == 2 * 4 + 1  # 4 per block + the (tied) output head
    assert count_parameters(cfg, trainable_only=True) == count_parameters(cfg)


def test_rejects_non_configs():
    with pytest.raises(TypeError, match="config"):
        count_parameters({"hidden_size": 4})
