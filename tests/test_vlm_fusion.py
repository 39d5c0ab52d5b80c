"""Fusion modules: shapes, zero-initialised gates, Q-Former output size."""

import pytest
import torch

from fieldnotes.vlm.fusion import FusionConfig, GatedCrossAttention, build_fusion
from fieldnotes.vlm.language import LanguageConfig, build_language_model
from fieldnotes.vlm.model import MedVLM


def test_gated_block_is_identity_at_init_and_not_after_gate_moves():
    torch.manual_seed(0)
    blk = GatedCrossAttention(16, 8, 2)
    x, v = torch.randn(3, 5, 16), torch.randn(3, 7, 8)
    assert torch.equal(blk(x, v), x)
    with torch.no_grad():
        blk.gate_attn.fill_(0.5)
    assert not torch.allclose(blk(x, v), x)


def test_xattn_vlm_equals_plain_lm_at_init():
    torch.manual_seed(0)
    lm = build_language_model(30, LanguageConfig(hidden=16, layers=4, heads=2))
    ids = torch.randint(4, 30, (2, 6))
    plain = lm(input_ids=ids).logits
    vlm = MedVLM(lm, FusionConfig(kind="xattn", every=2, heads=2), d_vision=8)
    assert len(vlm.fusion) == 2
    out = vlm(ids, features=torch.randn(2, 9, 8)).logits
    assert torch.allclose(out, plain, atol=1e-6)
    with torch.no_grad():
        for blk in vlm.fusion:
            blk.gate_attn.fill_(1.0)
    assert not torch.allclose(vlm(ids, features=torch.randn(2, 9, 8)).logits, plain, atol=1e-4)


def test_prefix_fusions_shapes():
    v = torch.randn(4, 10, 8)
    q = build_fusion(
        FusionConfig(kind="qformer", num_queries=5, qformer_hidden=16, heads=2), 8, 12, 2
    )
    assert q(v).shape == (4, 5, 12)
    lin = build_fusion(FusionConfig(kind="linear"), 8, 12, 2)
    assert lin(v).shape == (4, 10, 12)


def test_image_changes_prefix_model_output():
    torch.manual_seed(1)
    lm = build_language_model(30, LanguageConfig(hidden=16, layers=2, heads=2))
    vlm = MedVLM(
        lm, FusionConfig(kind="qformer", num_queries=3, qformer_hidden=16, heads=2), d_vision=8
    )
    ids = torch.randint(4, 30, (2, 6))
    a = vlm(ids, features=torch.randn(2, 4, 8)).logits
    b = vlm(ids, features=torch.randn(2, 4, 8)).logits
    assert a.shape == (2, 6 + 3, 30)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    "field", ["every", "num_queries", "qformer_layers", "qformer_hidden", "heads"]
)
def test_bad_fusion_sizes_are_refused_naming_the_field(field):
    for value in (0, -1, 1.5):
        with pytest.raises(ValueError, match=field):
            FusionConfig(**{field: value})


def test_qformer_width_must_split_over_the_heads():
    with pytest.raises(
        ValueError, match=r"qformer_hidden \(30\) must be a multiple of heads \(4\)"
    ):
        FusionConfig(qformer_hidden=30, heads=4)
