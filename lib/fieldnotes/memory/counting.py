"""Exact parameter counts of `transformers` models, built from their configs on the meta device.

Nothing is downloaded and no weights are allocated: the model is constructed under
``torch.device("meta")``, so even a 7B model is counted in seconds. Tied (shared) weights, such as
BLOOM's input embedding and output head, are one ``Parameter`` and count once.

The configs of the chapter's real-scale VLM are written out here as values (from the models'
published ``config.json`` files), so the book never fetches them.
"""

from __future__ import annotations


def _build_on_meta(config, model_class=None):
    """Instantiate the model for ``config`` on the meta device (no memory, no download)."""
    import torch
    import transformers

    if not isinstance(config, transformers.PretrainedConfig):
        raise TypeError(
            f"config must be a transformers.PretrainedConfig, got {type(config).__name__}"
        )
    with torch.device("meta"):
        if model_class is not None:
            return model_class(config)
        from transformers import AutoModel, AutoModelForCausalLM
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return AutoModelForCausalLM.from_config(config)
        return AutoModel.from_config(config)


def count_parameters(config, *, model_class=None, trainable_only: bool = False) -> int:
    """Exact number of parameters of the model a ``transformers`` config describes (tied once).

    Causal-LM configs are built with their language-model head (``AutoModelForCausalLM``), others
    with ``AutoModel``; pass ``model_class`` (e.g. ``ViTModel``) to choose.
    """
    model = _build_on_meta(config, model_class)
    # Module.parameters() yields a shared Parameter once
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def largest_layer_parameters(config, *, model_class=None) -> int:
    """Parameters of the largest single module (its own, not its children's), as DeepSpeed counts.

    DeepSpeed's ZeRO-3 estimator needs this: a layer's weights are gathered whole before use.
    """
    model = _build_on_meta(config, model_class)
    return max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())


def linear_shapes(
    config, *, model_class=None, targets: tuple[str, ...] = ()
) -> list[tuple[int, int]]:
    """(in_features, out_features) of every ``nn.Linear`` whose name ends with one of ``targets``.

    An empty ``targets`` selects every linear layer (the output head included).
    """
    import torch

    model = _build_on_meta(config, model_class)
    return [
        (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and (not targets or name.split(".")[-1] in targets)
    ]


# --- the chapter's real-scale VLM, written out as config values ------------------------------


def bloomz_7b1_config():
    """BLOOMZ-7b1 (bigscience/bloomz-7b1): vocab 250,880, hidden 4,096, 30 layers, 32 heads."""
    from transformers import BloomConfig

    return BloomConfig(vocab_size=250880, hidden_size=4096, n_layer=30, n_head=32)


def biomedclip_vit_config():
    """BiomedCLIP's image tower: a ViT-B/16 at 224 px (hidden 768, 12 layers, 12 heads, MLP 3,072)."""
    from transformers import ViTConfig

    return ViTConfig(
        image_size=224,
        patch_size=16,
        num_channels=3,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        layer_norm_eps=1e-6,
        qkv_bias=True,
    )


def biomedclip_image_tower(config):
    """transformers' ``ViTModel`` for ``config`` without its pooler (a 768 x 768 dense layer, 0.59 M
    parameters at ViT-B): BiomedCLIP's open_clip/timm tower has none, and a Q-Former reads the
    patch features unpooled. Pass it as ``count_parameters(..., model_class=...)``."""
    from transformers import ViTModel

    return ViTModel(config, add_pooling_layer=False)


def blip2_qformer_config(encoder_hidden_size: int = 768):
    """A BLIP-2-size Q-Former (BERT-base: hidden 768, 12 layers, cross-attention every 2nd layer)."""
    from transformers import Blip2QFormerConfig

    return Blip2QFormerConfig(
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        cross_attention_frequency=2,
        encoder_hidden_size=encoder_hidden_size,
    )
