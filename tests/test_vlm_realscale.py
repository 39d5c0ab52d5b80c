"""Real-scale path: ZeRO-3 JSON, and the loaders' from_pretrained on tiny models saved locally, offline."""

import json

import pytest
import torch

from fieldnotes.vlm.fusion import FusionConfig
from fieldnotes.vlm.realscale import (
    BIOMEDCLIP,
    BLOOMZ,
    RealScaleConfig,
    build_real_vlm,
    load_biomedclip,
    load_hf_vision_encoder,
    load_language_model,
    write_zero3_config,
    zero3_config,
)


def test_names_and_zero3_json(tmp_path):
    cfg = RealScaleConfig()
    assert (
        cfg.vision_model == BIOMEDCLIP == "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
    )
    assert cfg.language_model == BLOOMZ == "bigscience/bloomz-7b1"
    c = json.loads(write_zero3_config(tmp_path / "z3.json", cfg).read_text())
    assert c["zero_optimization"]["stage"] == 3 and c["bf16"]["enabled"] is True
    assert c["train_batch_size"] == cfg.micro_batch_per_gpu * cfg.gradient_accumulation * cfg.gpus
    assert zero3_config(RealScaleConfig(gpus=4))["train_batch_size"] == 4 * 4 * 4
    with pytest.raises(ValueError, match="gpus"):
        zero3_config(RealScaleConfig(gpus=2))


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    from transformers import (
        BloomConfig,
        BloomForCausalLM,
        CLIPVisionConfig,
        CLIPVisionModel,
        PreTrainedTokenizerFast,
    )

    from fieldnotes.vlm.language import train_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    tok = train_tokenizer(["question : is there a nodule ? answer : yes"])
    assert isinstance(tok, PreTrainedTokenizerFast)
    lm = BloomForCausalLM(BloomConfig(vocab_size=len(tok), hidden_size=16, n_layer=2, n_head=2))
    lm.save_pretrained(tmp_path / "bloom")
    tok.save_pretrained(tmp_path / "bloom")
    vis = CLIPVisionModel(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=32, patch_size=16))  # fmt: skip
    vis.save_pretrained(tmp_path / "clip")
    return tmp_path, lm, vis


def test_loaders_read_local_folders_offline(tiny_models):
    root, lm, vis = tiny_models
    lm2, tok = load_language_model(root / "bloom")
    ids = torch.tensor([tok.encode("is there a nodule ?")])
    assert torch.allclose(lm2(input_ids=ids).logits, lm(input_ids=ids).logits)
    enc = load_hf_vision_encoder(root / "clip")
    px = torch.randn(2, 3, 32, 32)
    assert torch.allclose(enc(px), vis(pixel_values=px).last_hidden_state)
    assert enc(px).shape == (2, 5, 16)  # CLS + 2x2 patches


def test_build_real_vlm_end_to_end(tiny_models):
    root, _, _ = tiny_models
    cfg = RealScaleConfig(fusion=FusionConfig(kind="qformer", num_queries=4, qformer_layers=1, qformer_hidden=16,
                                              heads=2), bf16=False, gradient_checkpointing=False)  # fmt: skip
    model, tok = build_real_vlm(root / "clip", root / "bloom", cfg)
    ids = torch.tensor([tok.encode("is there a nodule ?")])
    out = model(ids, pixels=torch.randn(1, 3, 32, 32))
    assert out.logits.shape == (1, 4 + ids.shape[1], len(tok))
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_missing_folder_and_missing_open_clip(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_language_model(tmp_path / "nope")
    (tmp_path / "biomedclip").mkdir()
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="open_clip"):
            load_biomedclip(tmp_path / "biomedclip")
