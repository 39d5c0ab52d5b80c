"""The chapter's experiment end to end: data, shared pre-training (once), alignment, VQA tuning,
evaluation, the ablation grid and the general zero-shot baseline.

Pre-training is shared: two encoders (general, medical) and two language models (general,
medical) are trained once, image tokens are cached per encoder, and every ablation cell only
trains its fusion (stage 1) and fusion + LM (stage 2) on those cached tokens.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np

from fieldnotes.vlm.data import Scan, images_array, make_scans
from fieldnotes.vlm.fusion import FUSIONS, FusionConfig
from fieldnotes.vlm.language import LanguageConfig
from fieldnotes.vlm.text import VQAItem, canonical_caption, make_captions, make_vqa
from fieldnotes.vlm.vision import VisionConfig


@dataclass(frozen=True)
class ExperimentSize:
    """Every count, step budget and model size of one run of the chapter (images in pixels)."""

    image_size: int = 64
    n_caption_images: int = 2000
    n_train_images: int = 1500
    n_test_images: int = 300
    n_general_images: int = 1500
    n_general_text: int = 3000
    questions_per_image: int = 4
    batch_size: int = 32
    lm_general_steps: int = 400
    lm_medical_steps: int = 300
    vision_general_steps: int = 300
    clip_steps: int = 400
    align_steps: int = 100
    vqa_steps: int = 150
    final_vqa_steps: int = 800
    lora_r: int = 0
    lr: float = 2e-3
    ablation_seeds: int = 2
    ablation_fusions: tuple[str, ...] = FUSIONS
    ablation_encoders: tuple[str, ...] = ("general", "medical")
    ablation_lms: tuple[str, ...] = ("general", "medical")
    vision: VisionConfig = VisionConfig()
    language: LanguageConfig = LanguageConfig()
    fusion: FusionConfig = FusionConfig()


SIZES: dict[str, ExperimentSize] = {
    "book": ExperimentSize(),
    "ci": ExperimentSize(
        n_caption_images=400,
        n_train_images=400,
        n_test_images=80,
        n_general_images=400,
        n_general_text=800,
        lm_general_steps=60,
        lm_medical_steps=40,
        vision_general_steps=40,
        clip_steps=60,
        align_steps=20,
        vqa_steps=80,
        final_vqa_steps=100,
        ablation_seeds=1,
        ablation_encoders=("general", "medical"),
        ablation_lms=("medical",),
        ablation_fusions=("qformer",),
    ),  # fmt: skip
}


def get_size(name: str, **overrides) -> ExperimentSize:
    """A named size ("ci" or "book") with fields overridden by keyword."""
    if name not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {name!r}")
    return replace(SIZES[name], **overrides)


@dataclass
class MedicalData:
    """Scans and text of one experiment: caption pairs, VQA train set and VQA test set."""

    caption_scans: list[Scan]
    captions: list[str]
    train_scans: list[Scan]
    train_items: list[VQAItem]
    test_scans: list[Scan]
    test_items: list[VQAItem]


def make_medical_data(size: ExperimentSize, seed: int, test_seed: int | None = None) -> MedicalData:
    """Generate all medical data; splits use disjoint seeds (caption 3s+1, train 3s+2, test ``test_seed``)."""
    test_seed = 3 * seed + 3 if test_seed is None else test_seed
    if test_seed in (3 * seed + 1, 3 * seed + 2):
        raise ValueError(
            f"test_seed {test_seed} collides with a training split seed of seed {seed}"
        )
    cap = make_scans(size.n_caption_images, 3 * seed + 1, size.image_size)
    train = make_scans(size.n_train_images, 3 * seed + 2, size.image_size)
    test = make_scans(size.n_test_images, test_seed, size.image_size)
    return MedicalData(
        cap, make_captions(cap, seed), train, make_vqa(train, seed, size.questions_per_image),
        test, make_vqa(test, test_seed + 17, size.questions_per_image),
    )  # fmt: skip


@dataclass
class Pretrained:
    """What the ablation shares: tokenizer, LM weights, encoders, cached image tokens, loss curves."""

    tokenizer: object
    lm_state: dict[str, dict]
    encoders: dict[str, object]
    features: dict[tuple[str, str], object]
    curves: dict[str, list[float]] = field(default_factory=dict)
    general_images: object = None
    general_captions: list[str] = field(default_factory=list)
    general_items: list[VQAItem] = field(default_factory=list)


def pretrain(size: ExperimentSize, data: MedicalData, seed: int) -> Pretrained:
    """Train the tokenizer, both LMs and both encoders once, and cache every split's image tokens."""
    from fieldnotes.book import seed_everything
    from fieldnotes.vlm.language import (
        build_language_model,
        pretrain_language_model,
        train_tokenizer,
    )
    from fieldnotes.vlm.shapes import make_shape_images, shape_captions, shape_labels, shape_vqa
    from fieldnotes.vlm.text import general_text, medical_text
    from fieldnotes.vlm.vision import VisionEncoder, encode_images, pretrain_clip, pretrain_general

    seed_everything(seed)
    shapes = make_shape_images(size.n_general_images, 7 * seed + 5, size.image_size)
    gen_caps = shape_captions(shapes, seed)
    gen_items = shape_vqa(shapes, seed)
    gen_text = general_text(size.n_general_text, seed)
    med_text = medical_text(data.caption_scans, seed)
    from fieldnotes.vlm.evaluate import prompt_text

    vocab_texts = gen_text + med_text + data.captions + gen_caps
    vocab_texts += [
        prompt_text(it.question) + " " + it.answer for it in data.train_items + gen_items
    ]
    tok = train_tokenizer(vocab_texts)
    curves: dict[str, list[float]] = {}
    lm = build_language_model(len(tok), size.language)
    curves["lm general"] = pretrain_language_model(lm, tok, gen_text, size.lm_general_steps, size.batch_size,
                                                   size.lr, seed, desc="general LM")  # fmt: skip
    lm_state = {"general": copy.deepcopy(lm.state_dict())}
    curves["lm medical"] = pretrain_language_model(lm, tok, med_text, size.lm_medical_steps, size.batch_size,
                                                   size.lr, seed + 1, desc="medical LM")  # fmt: skip
    lm_state["medical"] = copy.deepcopy(lm.state_dict())

    shape_imgs = images_array(shapes)
    general = VisionEncoder(size.vision)
    curves["vision general"] = pretrain_general(general, shape_imgs, shape_labels(shapes),
                                                size.vision_general_steps, 64, size.lr, seed)  # fmt: skip
    medical = VisionEncoder(size.vision)
    cap_imgs = images_array(data.caption_scans)
    keys = [canonical_caption(s) for s in data.caption_scans]
    curves["vision medical (CLIP)"] = pretrain_clip(medical, cap_imgs, data.captions, keys, tok,
                                                    size.clip_steps, 64, size.lr, seed)  # fmt: skip
    # "random": the same ViT with no pre-training at all (the post's "or not at all" baseline)
    encoders = {"general": general, "medical": medical, "random": VisionEncoder(size.vision)}
    feats = {}
    splits = {
        "caption": cap_imgs,
        "train": images_array(data.train_scans),
        "test": images_array(data.test_scans),
    }
    for name, enc in encoders.items():
        enc.requires_grad_(False)
        for split, imgs in splits.items():
            feats[(name, split)] = encode_images(enc, imgs)
    feats[("general", "shapes")] = encode_images(general, shape_imgs)
    return Pretrained(tok, lm_state, encoders, feats, curves, shape_imgs, gen_caps, gen_items)


def test_features(pre: Pretrained, encoder: str, scans: list[Scan]):
    """Image tokens of new scans (e.g. a test set from another seed) through a pre-trained encoder."""
    from fieldnotes.vlm.vision import encode_images

    return encode_images(pre.encoders[encoder], images_array(scans))


def _seq_batches(tokenizer, prompts: list[str], targets: list[str], max_len: int = 40):
    """Token tensors for prompt + target + EOS, loss only on target and EOS; right-padded."""
    import torch

    rows, labs = [], []
    for p, t in zip(prompts, targets, strict=True):
        pi = tokenizer.encode(p, add_special_tokens=False) if p else []
        ti = tokenizer.encode(t, add_special_tokens=False) + [tokenizer.eos_token_id]
        ids = (pi + ti)[:max_len]
        rows.append(ids)
        labs.append(([-100] * len(pi) + ti)[:max_len])
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labs, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        labels[i, : len(lab)] = torch.tensor(lab)
    return ids, mask, labels


@dataclass
class RunResult:
    """One trained VLM: its metrics on the test set, predictions, loss curves and throughput."""

    name: str
    model: object
    metrics: dict
    predictions: list[str]
    align_losses: list[float]
    vqa_losses: list[float]
    samples_per_second: float
    trainable_parameters: int
    total_parameters: int


def train_vlm(
    pre: Pretrained,
    size: ExperimentSize,
    encoder: str = "medical",
    lm: str = "medical",
    fusion: str = "qformer",
    seed: int = 0,
    vqa_steps: int | None = None,
    caption_feats=None,
    captions: list[str] | None = None,
    vqa_feats=None,
    vqa_items: list[VQAItem] | None = None,
    bf16: bool = False,
    gradient_checkpointing: bool = False,
    checkpoint_dir: str | None = None,
    progress: bool = True,
) -> tuple[object, list[float], list[float], float]:
    """Stage 1 (align the fusion on captions) then stage 2 (VQA tuning); returns (model, losses1, losses2, samples/s)."""
    from fieldnotes.book import seed_everything
    from fieldnotes.vlm.evaluate import prompt_text
    from fieldnotes.vlm.language import build_language_model
    from fieldnotes.vlm.model import MedVLM, set_stage
    from fieldnotes.vlm.train import TrainConfig, train_loop

    if encoder not in pre.encoders or lm not in pre.lm_state:
        raise ValueError(f"encoder/lm must be in {sorted(pre.encoders)}, got {encoder!r}, {lm!r}")
    seed_everything(seed)
    tok = pre.tokenizer
    language = build_language_model(len(tok), size.language)
    language.load_state_dict(pre.lm_state[lm])
    if gradient_checkpointing:
        language.gradient_checkpointing_enable()
        language.config.use_cache = False
    model = MedVLM(language, replace(size.fusion, kind=fusion), size.vision.hidden)
    bs = size.batch_size

    def batches(feats, ids, mask, labels, which):
        def fn(step):
            idx = np.random.default_rng([seed, step, which]).integers(0, len(ids), bs)
            return {"idx": idx}

        return fn

    # stage 1: captions
    c_ids, c_mask, c_lab = _seq_batches(tok, ["caption :"] * len(captions), captions)
    params = set_stage(model, 1)
    import torch

    def loss1(b):
        idx = torch.as_tensor(b["idx"])
        return model(c_ids[idx], c_mask[idx], c_lab[idx], features=caption_feats[idx]).loss

    def batch1(step):
        return {
            "idx": torch.as_tensor(
                np.random.default_rng([seed, step, 11]).integers(0, len(c_ids), bs)
            )
        }

    ck1 = f"{checkpoint_dir}/stage1" if checkpoint_dir else None
    ck2 = f"{checkpoint_dir}/stage2" if checkpoint_dir else None
    cfg1 = TrainConfig(steps=size.align_steps, lr=size.lr, seed=seed, bf16=bf16, progress=progress,
                       checkpoint_dir=ck1, checkpoint_every=10 if ck1 else 0)  # fmt: skip
    r1 = train_loop(params, loss1, batch1, cfg1, desc=f"align {fusion}")
    # stage 2: VQA
    v_ids, v_mask, v_lab = _seq_batches(tok, [prompt_text(it.question) for it in vqa_items],
                                        [it.answer for it in vqa_items])  # fmt: skip
    v_img = torch.tensor([it.image for it in vqa_items])
    params = set_stage(model, 2, size.lora_r)

    def loss2(b):
        idx = b["idx"]
        return model(v_ids[idx], v_mask[idx], v_lab[idx], features=vqa_feats[v_img[idx]]).loss

    def batch2(step):
        return {
            "idx": torch.as_tensor(
                np.random.default_rng([seed, step, 22]).integers(0, len(v_ids), bs)
            )
        }

    cfg2 = TrainConfig(steps=vqa_steps or size.vqa_steps, lr=size.lr, seed=seed + 1, bf16=bf16, progress=progress,
                       checkpoint_dir=ck2, checkpoint_every=10 if ck2 else 0)  # fmt: skip
    r2 = train_loop(params, loss2, batch2, cfg2, desc=f"VQA {fusion}")
    return model, r1.losses, r2.losses, r2.samples_per_second


def run_config(
    pre: Pretrained,
    data: MedicalData,
    size: ExperimentSize,
    encoder: str,
    lm: str,
    fusion: str,
    seed: int,
    test_feats=None,
    test_items: list[VQAItem] | None = None,
    vqa_steps: int | None = None,
    **kwargs,
) -> RunResult:
    """Train one configuration on the medical data and evaluate it on the (given or default) test set."""
    from fieldnotes.vlm.evaluate import answer_questions, vqa_metrics
    from fieldnotes.vlm.model import count_parameters

    model, l1, l2, sps = train_vlm(
        pre, size, encoder, lm, fusion, seed, vqa_steps, pre.features[(encoder, "caption")], data.captions,
        pre.features[(encoder, "train")], data.train_items, **kwargs,
    )  # fmt: skip
    feats = pre.features[(encoder, "test")] if test_feats is None else test_feats
    items = data.test_items if test_items is None else test_items
    preds = answer_questions(model, pre.tokenizer, feats, items)
    name = f"{encoder} encoder + {lm} LM + {fusion}"
    return RunResult(name, model, vqa_metrics(items, preds), preds, l1, l2, sps,
                     count_parameters(model, True), count_parameters(model))  # fmt: skip


def run_zero_shot(
    pre: Pretrained,
    data: MedicalData,
    size: ExperimentSize,
    seed: int,
    fusion: str = "qformer",
    **kwargs,
) -> RunResult:
    """The general VLM (general encoder + LM, aligned and tuned on the shapes domain) asked medical questions."""
    from fieldnotes.vlm.evaluate import answer_questions, vqa_metrics
    from fieldnotes.vlm.model import count_parameters

    feats = pre.features[("general", "shapes")]
    model, l1, l2, sps = train_vlm(pre, size, "general", "general", fusion, seed, None, feats,
                                   pre.general_captions, feats, pre.general_items, **kwargs)  # fmt: skip
    preds = answer_questions(
        model, pre.tokenizer, pre.features[("general", "test")], data.test_items
    )
    return RunResult("general VLM, zero-shot", model, vqa_metrics(data.test_items, preds), preds, l1, l2, sps,
                     count_parameters(model, True), count_parameters(model))  # fmt: skip


def run_ablation(
    pre: Pretrained, data: MedicalData, size: ExperimentSize, seed: int, progress: bool = True
):
    """Every (encoder, LM, fusion, seed) cell of the grid; returns a long DataFrame, one row per run."""
    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    grid = [(e, m, f, s) for e in size.ablation_encoders for m in size.ablation_lms for f in size.ablation_fusions
            for s in range(size.ablation_seeds)]  # fmt: skip
    for e, m, f, s in tqdm(grid, desc="ablation", disable=not progress):
        r = run_config(pre, data, size, e, m, f, 1000 * seed + s, progress=False)
        rows.append({"encoder": e, "language model": m, "fusion": f, "seed": s,
                     "closed accuracy": r.metrics["closed_accuracy"], "open exact match": r.metrics["open_exact_match"],
                     "overall accuracy": r.metrics["overall_accuracy"], "samples/s": r.samples_per_second,
                     "trainable parameters": r.trainable_parameters})  # fmt: skip
    return pd.DataFrame(rows)


def summarize_ablation(df):
    """Mean and standard deviation over seeds per (encoder, LM, fusion) cell."""
    metrics = ["closed accuracy", "open exact match", "overall accuracy"]
    g = df.groupby(["encoder", "language model", "fusion"])[metrics]
    out = (
        g.mean()
        .add_suffix(" mean")
        .join(g.std(ddof=1).add_suffix(" sd"))
        .join(g.size().rename("seeds"))
    )
    return out.reset_index()


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch (1 is fastest for these tiny models on a shared machine)."""
    import torch

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    torch.set_num_threads(threads)


def _summary(r: RunResult) -> dict:
    return {"name": r.name, **r.metrics, "samples_per_second": r.samples_per_second,
            "trainable_parameters": r.trainable_parameters, "total_parameters": r.total_parameters}  # fmt: skip


def run_chapter(
    size: ExperimentSize,
    seed: int = 0,
    test_seed: int | None = None,
    only_final: bool = False,
    progress: bool = True,
) -> dict:
    """Pre-training, the final configuration on a test set from ``test_seed``, the zero-shot general VLM
    and (unless ``only_final``) the ablation; returns a JSON-ready dict."""
    from fieldnotes.vlm.text import make_vqa

    data = make_medical_data(size, seed)
    pre = pretrain(size, data, seed)
    out: dict = {
        "size": {k: v for k, v in vars(size).items() if isinstance(v, int | float | str)},
        "seed": seed,
    }
    t_seed = 3 * seed + 3 if test_seed is None else test_seed
    scans = (
        make_scans(size.n_test_images, t_seed, size.image_size)
        if test_seed is not None
        else data.test_scans
    )
    items = (
        make_vqa(scans, t_seed + 17, size.questions_per_image)
        if test_seed is not None
        else data.test_items
    )
    feats = test_features(pre, "medical", scans)
    final = run_config(pre, data, size, "medical", "medical", size.fusion.kind, seed, feats, items,
                       vqa_steps=size.final_vqa_steps, progress=progress)  # fmt: skip
    out["test_seed"] = t_seed
    out["final"] = _summary(final)
    out["zero_shot"] = _summary(run_zero_shot(pre, data, size, seed, progress=progress))
    out["pretraining_final_loss"] = {k: v[-1] for k, v in pre.curves.items()}
    if not only_final:
        df = run_ablation(pre, data, size, seed, progress=progress)
        out["ablation"] = df.to_dict(orient="records")
        out["ablation_summary"] = summarize_ablation(df).to_dict(orient="records")
    return out
