"""Metrics by hand-computed examples; batched greedy decoding equals one-at-a-time decoding."""

import pytest
import torch

from fieldnotes.vlm.evaluate import answer_questions, prompt_text, vqa_metrics
from fieldnotes.vlm.fusion import FusionConfig
from fieldnotes.vlm.language import LanguageConfig, build_language_model, train_tokenizer
from fieldnotes.vlm.model import MedVLM
from fieldnotes.vlm.text import VQAItem


def _it(q, a, kind, qtype="presence", mod="ct", img=0):
    return VQAItem(img, q, a, kind, qtype, mod)


def test_every_question_counts_including_invalid_closed_answers():
    items = [_it("a?", "yes", "closed"), _it("b?", "no", "closed"), _it("c?", "yes", "closed", mod="mri"),
             _it("d?", "left lung", "open", "location"), _it("e?", "ct", "open", "modality")]  # fmt: skip
    preds = ["yes", "maybe", "Yes.", "left  lung", "mri"]
    m = vqa_metrics(items, preds)
    assert m["closed_accuracy"] == pytest.approx(2 / 3)  # "maybe" is wrong, not dropped
    assert m["open_exact_match"] == pytest.approx(1 / 2)
    assert m["overall_accuracy"] == pytest.approx(3 / 5)
    assert (m["n_closed"], m["n_open"], m["n_questions"]) == (3, 2, 5)
    assert m["by_modality"]["ct/closed"] == {"accuracy": 0.5, "n": 2}
    assert m["by_question_type"]["location/open"] == {"accuracy": 1.0, "n": 1}
    with pytest.raises(ValueError, match="differ"):
        vqa_metrics(items, preds[:2])


@pytest.mark.parametrize("kind", ["xattn", "qformer", "linear"])
def test_batched_answers_equal_single_answers(kind):
    torch.manual_seed(0)
    questions = [
        "is there a nodule?",
        "what modality is this?",
        "is this a ct scan?",
        "where is the lesion located?",
    ]
    tok = train_tokenizer([prompt_text(q) + " yes no ct mri left lung" for q in questions])
    lm = build_language_model(len(tok), LanguageConfig(hidden=16, layers=2, heads=2))
    model = MedVLM(
        lm, FusionConfig(kind=kind, num_queries=3, qformer_hidden=16, heads=2), d_vision=8
    )
    if kind == "xattn":
        with torch.no_grad():
            for b in model.fusion:
                b.gate_attn.fill_(1.0)
    feats = torch.randn(5, 6, 8)
    items = [_it(q, "yes", "closed", img=i % 5) for i, q in enumerate(questions * 3)]
    batched = answer_questions(model, tok, feats, items, max_new_tokens=3)
    single = [answer_questions(model, tok, feats, [it], max_new_tokens=3)[0] for it in items]
    assert batched == single
