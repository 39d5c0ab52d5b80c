"""Tokenizer round trip and masking; the Bloom LM learns a corpus."""

import numpy as np
import pytest
import torch

from fieldnotes.vlm.language import (
    LanguageConfig,
    build_language_model,
    encode_texts,
    pretrain_language_model,
    train_tokenizer,
)
from fieldnotes.vlm.text import general_text


def test_tokenizer_round_trip_and_special_tokens():
    tok = train_tokenizer(["question : is there a nodule? answer : yes", "x-ray . left lung ."])
    ids = tok.encode("Is there a nodule?", add_special_tokens=False)
    assert tok.decode(ids) == "is there a nodule ?"
    assert tok.decode(tok.encode("left lung", add_special_tokens=False)) == "left lung"
    assert tok.decode(tok.encode("x-ray", add_special_tokens=False)) == "x-ray"  # one word
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 3)
    with pytest.raises(ValueError, match="texts"):
        train_tokenizer([])


def test_encode_texts_pads_and_masks():
    tok = train_tokenizer(["a b c d"])
    ids, mask, labels = encode_texts(tok, ["a b", "a b c d"], max_len=10)
    assert ids.shape == (2, 5) and mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert ids[0, 2].item() == tok.eos_token_id and labels[0, 3:].tolist() == [-100, -100]


def test_lm_learns_general_text():
    torch.manual_seed(0)
    texts = general_text(400, 0)
    tok = train_tokenizer(texts)
    lm = build_language_model(len(tok), LanguageConfig(hidden=32, layers=2, heads=2))
    losses = pretrain_language_model(lm, tok, texts, steps=80, batch_size=16, lr=3e-3)
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    with pytest.raises(ValueError, match="vocab_size"):
        build_language_model(2)


@pytest.mark.parametrize("field, value", [("hidden", 0), ("layers", 0), ("heads", -2), ("layers", 2.0),
                                          ("heads", False)])  # fmt: skip
def test_bad_lm_sizes_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        LanguageConfig(**{field: value})


def test_lm_width_must_split_over_the_heads():
    with pytest.raises(ValueError, match=r"hidden \(30\) must be a multiple of heads \(4\)"):
        LanguageConfig(hidden=30, heads=4)
