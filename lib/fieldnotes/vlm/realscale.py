"""The real-scale configuration: BiomedCLIP ViT-B/16 + BloomZ-7B1 + Q-Former, trained with ZeRO-3.

Nothing here downloads: the loaders call ``from_pretrained`` on *local* folders (run with
``HF_HUB_OFFLINE=1``). Fetch the weights yourself onto the cluster first, e.g.
``huggingface-cli download bigscience/bloomz-7b1 --local-dir /models/bloomz-7b1``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from fieldnotes.vlm.fusion import FusionConfig

BIOMEDCLIP = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
BLOOMZ = "bigscience/bloomz-7b1"


@dataclass(frozen=True)
class RealScaleConfig:
    """The post's final model and how to train it (GPUs, micro-batch per GPU, sequence length in tokens)."""

    vision_model: str = BIOMEDCLIP  # loaded through open_clip
    language_model: str = BLOOMZ  # RadBloomZ-7B is BloomZ-7B1 adapted on radiology text
    vision_width: int = 768  # ViT-B/16 token width
    image_size: int = 224
    fusion: FusionConfig = FusionConfig(
        kind="qformer", num_queries=32, qformer_layers=12, qformer_hidden=768, heads=12
    )
    gpus: int = 8
    micro_batch_per_gpu: int = 4
    gradient_accumulation: int = 4
    max_text_tokens: int = 256
    lora_r: int = 16
    bf16: bool = True
    gradient_checkpointing: bool = True


def zero3_config(cfg: RealScaleConfig = RealScaleConfig(), offload_optimizer: bool = False) -> dict:
    """DeepSpeed ZeRO-3 JSON for 4-8 x A100-40GB: bf16, sharded parameters, gradients and optimizer state."""
    if not 4 <= cfg.gpus <= 8:
        raise ValueError(f"gpus must be 4..8 for this configuration, got {cfg.gpus}")
    zero = {
        "stage": 3,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": 5e7,
        "stage3_prefetch_bucket_size": 5e7,
        "stage3_param_persistence_threshold": 1e5,
        "stage3_max_live_parameters": 1e9,
        "stage3_gather_16bit_weights_on_model_save": True,
    }
    if offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_per_gpu,
        "gradient_accumulation_steps": cfg.gradient_accumulation,
        "train_batch_size": cfg.micro_batch_per_gpu * cfg.gradient_accumulation * cfg.gpus,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": cfg.bf16},
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.01},
        },
        "scheduler": {
            "type": "WarmupCosineLR",
            "params": {"total_num_steps": 10000, "warmup_num_steps": 300},
        },
        "zero_optimization": zero,
        "activation_checkpointing": {
            "partition_activations": True,
            "contiguous_memory_optimization": False,
        },
        "steps_per_print": 50,
    }


def write_zero3_config(path: str | Path, cfg: RealScaleConfig = RealScaleConfig(), **kw) -> Path:
    """Write ``zero3_config`` to a JSON file for ``deepspeed --num_gpus N train.py --deepspeed_config``."""
    path = Path(path)
    path.write_text(json.dumps(zero3_config(cfg, **kw), indent=2) + "\n")
    return path


def _require_local(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(
            f"{what} must be a local folder with downloaded weights; {str(p)!r} is not a folder"
        )
    return p


def load_language_model(path: str | Path, dtype: str = "float32"):
    """A Bloom(Z) causal LM and its tokenizer from a local folder (no network: ``local_files_only``)."""
    import torch
    from transformers import AutoTokenizer, BloomForCausalLM

    p = _require_local(path, "language model path")
    model = BloomForCausalLM.from_pretrained(p, local_files_only=True, dtype=getattr(torch, dtype))
    tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
    return model, tok


def load_hf_vision_encoder(path: str | Path):
    """A transformers ViT or CLIP vision tower from a local folder; returns a module pixels -> tokens."""
    import torch
    from transformers import AutoConfig, CLIPVisionModel, ViTModel

    p = _require_local(path, "vision model path")
    kind = AutoConfig.from_pretrained(p, local_files_only=True).model_type
    if kind in ("clip", "clip_vision_model"):
        net = CLIPVisionModel.from_pretrained(p, local_files_only=True)
    elif kind == "vit":
        net = ViTModel.from_pretrained(p, local_files_only=True, add_pooling_layer=False)
    else:
        raise ValueError(
            f"vision model at {str(p)!r} has model_type {kind!r}; expected 'vit' or 'clip'"
        )

    class Tokens(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.hidden = net.config.hidden_size

        def forward(self, pixels):
            return self.net(pixel_values=pixels).last_hidden_state

    return Tokens()


def load_biomedclip(path: str | Path):
    """BiomedCLIP's ViT-B/16 image tower from a local open_clip folder (``open_clip_config.json`` +
    ``open_clip_pytorch_model.bin``); returns (module pixels -> tokens, preprocess). Needs open_clip."""
    p = _require_local(path, "BiomedCLIP path")
    try:
        import open_clip
    except (
        ImportError
    ) as e:  # open_clip needs torchvision, which is not installed beside torch 2.13 here
        raise ImportError(
            "load_biomedclip needs open_clip_torch (and torchvision); pip install open_clip_torch"
        ) from e
    import torch

    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{p}")
    trunk = model.visual.trunk  # a timm VisionTransformer

    class Tokens(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = trunk
            self.hidden = trunk.embed_dim

        def forward(self, pixels):
            return self.trunk.forward_features(pixels)

    return Tokens(), preprocess


def build_real_vlm(
    vision_path: str | Path,
    lm_path: str | Path,
    cfg: RealScaleConfig = RealScaleConfig(),
    vision_loader: str = "hf",
):
    """The real-scale VLM from local folders: encoder (frozen) -> Q-Former -> Bloom(Z); returns (model, tokenizer)."""
    from fieldnotes.vlm.model import MedVLM

    if vision_loader == "open_clip":
        encoder, _ = load_biomedclip(vision_path)
    elif vision_loader == "hf":
        encoder = load_hf_vision_encoder(vision_path)
    else:
        raise ValueError(f"vision_loader must be 'hf' or 'open_clip', got {vision_loader!r}")
    lm, tok = load_language_model(lm_path, "bfloat16" if cfg.bf16 else "float32")
    if cfg.gradient_checkpointing:
        lm.gradient_checkpointing_enable()
    return MedVLM(lm, cfg.fusion, encoder.hidden, encoder=encoder), tok


def describe(cfg: RealScaleConfig = RealScaleConfig()) -> dict:
    """The configuration as a plain dict (for the notebook's table)."""
    return asdict(cfg)
