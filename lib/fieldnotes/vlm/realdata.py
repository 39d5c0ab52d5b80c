"""Training on a real medical VQA set (SLAKE or VQA-RAD in their published folder layouts), not only
evaluating on it.

The same two stages as on the generated scans, with every part built from the real *training* split
only (the test split is read once, for scoring):

* a word-level tokenizer trained on the training split's prompts and answers;
* a medical LM pre-trained on the training split's question-answer lines (``lm_medical_steps``);
* a medical encoder pre-trained with the CLIP loss on the training images, each paired with a
  pseudo-caption (its training questions and answers joined: real sets ship no captions), images
  resized to ``size.image_size`` in grey scale;
* stage 1 aligns the Q-Former on those pairs, stage 2 tunes Q-Former + LM on the training
  questions for ``final_vqa_steps``; the model is scored on the official test split.

Layouts: SLAKE ``root/{train,validate,test}.json`` with images under ``root/imgs``; VQA-RAD
``root/VQA_RAD Dataset Public.json`` with images under ``root/VQA_RAD Image Folder``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from fieldnotes.vlm.seeds import derive_seed

VQA_RAD_JSON = "VQA_RAD Dataset Public.json"
VQA_RAD_IMAGES = "VQA_RAD Image Folder"
DATASETS: tuple[str, ...] = ("slake", "vqa-rad")


def load_real(dataset: str, root: str | Path, image_size: int):
    """(training split, test split) of ``dataset`` ("slake" or "vqa-rad") under ``root``, as
    ``formats.Loaded``; English rows for SLAKE, VQA-RAD's official ``phrase_type`` split."""
    from fieldnotes.vlm.formats import load_slake, load_vqa_rad

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{dataset} root {str(root)!r} is not a folder")
    if dataset == "slake":
        return load_slake(root, "train", image_size), load_slake(root, "test", image_size)
    js, imgs = root / VQA_RAD_JSON, root / VQA_RAD_IMAGES
    return (load_vqa_rad(js, imgs, image_size, "train"), load_vqa_rad(js, imgs, image_size, "test"))


def pseudo_captions(loaded) -> list[str]:
    """One text per image of ``loaded``: its questions and answers joined (the stage-1 pairs)."""
    lines: dict[int, list[str]] = defaultdict(list)
    for it in loaded.items:
        lines[it.image].append(f"{it.question} {it.answer} .")
    missing = [i for i in range(len(loaded.images)) if i not in lines]
    if missing:
        raise ValueError(f"images {missing[:5]} have no question in the training split")
    return [" ".join(lines[i]) for i in range(len(loaded.images))]


def train_on_real(dataset: str, root: str | Path, size, seed: int = 0, progress: bool = True):
    """Train the final configuration on ``dataset``'s training split under ``root`` (see the
    module docstring) and score it on its test split; returns the ``pipeline.RunResult``."""
    import torch

    from fieldnotes.book import seed_everything
    from fieldnotes.vlm.evaluate import prompt_text
    from fieldnotes.vlm.language import (
        build_language_model,
        pretrain_language_model,
        train_tokenizer,
    )
    from fieldnotes.vlm.pipeline import MedicalData, Pretrained, VLMRunConfig, run_config
    from fieldnotes.vlm.vision import VisionEncoder, encode_images, pretrain_clip

    train, test = load_real(dataset, root, size.image_size)
    if not train.items or not test.items:
        raise ValueError(f"{dataset} at {root}: the training split has {len(train.items)} questions and the "
                         f"test split {len(test.items)}; both must have some")  # fmt: skip
    captions = pseudo_captions(train)
    qa = [prompt_text(it.question) + " " + it.answer for it in train.items]
    tok = train_tokenizer(qa + ["caption :"] + captions)
    seed_everything(derive_seed(seed, "real pre-training"))
    lm = build_language_model(len(tok), size.language)
    lm_curve = pretrain_language_model(lm, tok, qa, size.lm_medical_steps, size.batch_size, size.lr,
                                       derive_seed(seed, "real LM"), desc="medical LM (real)",
                                       progress=progress)  # fmt: skip
    torch.manual_seed(derive_seed(seed, "real encoder init"))
    enc = VisionEncoder(size.vision)
    clip_curve = pretrain_clip(enc, train.images, captions, captions, tok, size.clip_steps, 64, size.lr,
                               derive_seed(seed, "real encoder"), progress=progress)  # fmt: skip
    enc.requires_grad_(False)
    train_feats = encode_images(enc, train.images)
    pre = Pretrained(tok, {"medical": lm.state_dict()}, {"medical": enc},
                     {("medical", "caption"): train_feats, ("medical", "train"): train_feats,
                      ("medical", "test"): encode_images(enc, test.images)},
                     {"lm medical": lm_curve, "vision medical (CLIP)": clip_curve})  # fmt: skip
    data = MedicalData([], captions, [], train.items, [], [], [], test.items, {})
    run = VLMRunConfig(
        seed=derive_seed(seed, "real run"), vqa_steps=size.final_vqa_steps, progress=progress
    )
    return run_config(pre, data, size, run, "test")
