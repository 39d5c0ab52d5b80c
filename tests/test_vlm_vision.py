"""Vision encoders (ViT and CNN), the CLIP loss against a hand computation, pre-training learns."""

import math

import numpy as np
import pytest
import torch

from fieldnotes.vlm.shapes import make_shape_images, shape_labels
from fieldnotes.vlm.vision import (
    MAX_LOGIT_SCALE,
    VisionConfig,
    VisionEncoder,
    clip_loss,
    encode_images,
    pretrain_clip,
    pretrain_general,
)


@pytest.mark.parametrize(("kind", "tokens"), [("vit", 1 + 4 * 4), ("cnn", 4 * 4)])
def test_encoder_token_shapes(kind, tokens):
    enc = VisionEncoder(
        VisionConfig(kind=kind, image_size=32, patch=8, hidden=16, layers=1, heads=2)
    )
    out = encode_images(enc, np.random.rand(3, 1, 32, 32).astype(np.float32))
    assert out.shape == (3, tokens, 16)


def test_config_validation():
    with pytest.raises(ValueError, match="kind"):
        VisionConfig(kind="resnet")
    with pytest.raises(ValueError, match="multiple"):
        VisionConfig(image_size=64, patch=12)
    with pytest.raises(ValueError, match="hidden .* multiple of heads"):
        VisionConfig(hidden=30, heads=4)
    assert VisionConfig(kind="cnn", hidden=30, heads=4).hidden == 30  # heads unused by the CNN


@pytest.mark.parametrize("field, value", [("image_size", 0), ("image_size", -64), ("patch", 0),
                                          ("hidden", 0), ("layers", 0), ("heads", 0), ("image_size", 64.0),
                                          ("hidden", True)])  # fmt: skip
def test_bad_sizes_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        VisionConfig(**{field: value})


def test_clip_logit_scale_is_capped_at_100_as_in_clip():
    img, txt = torch.randn(4, 8), torch.randn(4, 8)
    capped = clip_loss(img, txt, torch.tensor(math.log(MAX_LOGIT_SCALE)))
    assert clip_loss(img, txt, torch.tensor(10.0)).item() == pytest.approx(capped.item(), rel=1e-5)
    assert clip_loss(img, txt, torch.tensor(1.0)).item() != pytest.approx(capped.item(), rel=1e-3)


def test_clip_loss_matches_hand_computation():
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    txt = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    scale = torch.tensor(0.0)  # logit scale exp(0) = 1
    cos = torch.tensor([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]])
    rows = -torch.log_softmax(cos, 1).diag().mean()
    cols = -torch.log_softmax(cos.T, 1).diag().mean()
    assert clip_loss(img, txt, scale).item() == pytest.approx(0.5 * (rows + cols).item(), abs=1e-6)
    # with both pairs marked as meaning the same, the target is uniform over the row
    same = torch.ones(2, 2, dtype=torch.bool)
    uniform = -(torch.log_softmax(cos, 1).mean(1)).mean() / 1
    uniform_t = -(torch.log_softmax(cos.T, 1).mean(1)).mean()
    assert clip_loss(img, txt, scale, same).item() == pytest.approx(
        0.5 * (uniform + uniform_t).item(), abs=1e-6
    )


def test_general_pretraining_beats_chance():
    torch.manual_seed(0)
    items = make_shape_images(256, 0, 32)
    x = np.stack([i.image for i in items])[:, None]
    y = shape_labels(items)
    enc = VisionEncoder(VisionConfig(kind="cnn", image_size=32, hidden=16))
    losses = pretrain_general(enc, x, y, steps=120, batch_size=64, lr=3e-3)
    assert np.mean(losses[-10:]) < 0.8 * math.log(12)  # chance level is ln(12) nats


def test_clip_start_outside_the_clamp_is_refused():
    from fieldnotes.vlm.language import train_tokenizer

    tok = train_tokenizer(["a scan", "another scan"])
    enc = VisionEncoder(VisionConfig(kind="cnn", image_size=32, hidden=16))
    imgs = np.zeros((2, 1, 32, 32), np.float32)
    for bad in (-0.1, math.log(MAX_LOGIT_SCALE) + 0.1, float("nan")):
        with pytest.raises(ValueError, match="start_log_scale"):
            pretrain_clip(enc, imgs, ["a scan", "another scan"], ["a", "b"], tok, 1,
                          start_log_scale=bad, progress=False)  # fmt: skip
