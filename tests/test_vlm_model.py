"""Stages freeze the right parameters; LoRA, checkpointing and bf16 switches work."""

import pytest
import torch

from fieldnotes.vlm.fusion import FusionConfig
from fieldnotes.vlm.language import LanguageConfig, build_language_model
from fieldnotes.vlm.model import MedVLM, count_parameters, set_stage


def _model(kind="qformer", layers=2):
    torch.manual_seed(0)
    lm = build_language_model(40, LanguageConfig(hidden=16, layers=layers, heads=2))
    return MedVLM(
        lm, FusionConfig(kind=kind, num_queries=3, qformer_hidden=16, heads=2), d_vision=8
    )


def test_stage1_trains_only_fusion_and_stage2_lora_only_adapters():
    m = _model()
    p1 = set_stage(m, 1)
    assert {id(p) for p in p1} == {id(p) for p in m.fusion.parameters()}
    lm_before = count_parameters(m.lm)
    p2 = set_stage(m, 2, lora_r=4)
    names = {n for n, p in m.named_parameters() if p.requires_grad}
    assert all(n.startswith("fusion.") or "lora_" in n for n in names)
    assert any("lora_" in n for n in names)
    assert count_parameters(m.lm) > lm_before  # adapters were added
    full = _model()
    p_full = set_stage(full, 2, lora_r=0)
    assert sum(p.numel() for p in p_full) == count_parameters(full)
    assert len(p2) < len(p_full) + 100


@pytest.mark.parametrize("lora_r", [-1, 2.5, True, "4", None])
def test_bad_lora_rank_is_refused_naming_it(lora_r):
    m = _model()
    with pytest.raises(ValueError, match="lora_r"):
        set_stage(m, 2, lora_r=lora_r)
    assert all(p.requires_grad for p in m.parameters())  # refused before anything was frozen


def test_lora_starts_as_identity():
    m = _model()
    ids = torch.randint(4, 40, (2, 5))
    feats = torch.randn(2, 4, 8)
    before = m(ids, features=feats).logits
    set_stage(m, 2, lora_r=4)
    assert torch.allclose(m(ids, features=feats).logits, before, atol=1e-6)


def test_gradient_checkpointing_gives_same_gradients_and_bf16_runs():
    ids = torch.randint(4, 40, (2, 5))
    feats = torch.randn(2, 4, 8)
    grads = []
    for ckpt in (False, True):
        m = _model("xattn")
        with torch.no_grad():
            for b in m.fusion:
                b.gate_attn.fill_(0.5)
        if ckpt:
            m.lm.gradient_checkpointing_enable()
            m.lm.config.use_cache = False
        m.train()
        m(ids, labels=ids, features=feats).loss.backward()
        grads.append(
            torch.cat([m.fusion[0].gate_attn.grad, m.fusion[0].attn.q_proj_weight.grad.ravel()])
        )
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = _model()(ids, labels=ids, features=feats).loss
    assert torch.isfinite(loss)


def test_numpy_int_lora_rank_is_accepted():
    import numpy as np

    m = _model()
    set_stage(m, 2, lora_r=np.int64(2))
    assert any("lora_" in n for n, p in m.named_parameters() if p.requires_grad)
