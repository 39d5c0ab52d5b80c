"""The chapter's experiment end to end: data, shared pre-training (once), alignment, VQA tuning,
evaluation, the ablation grid, the blind baselines and the general zero-shot model.

Splits: captions, VQA train, validation and test scans come from four disjoint generator seeds.
Everything that chooses between configurations (the ablation, the blind baselines beside it) is
scored on the validation split; only the final configuration is scored on the test split.

Pre-training is shared: two encoders (general, medical) and two language models (general,
medical) are trained once, image tokens are cached per encoder, and every ablation cell only
trains its fusion (stage 1) and fusion + LM (stage 2) on those cached tokens.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from fieldnotes.vlm.data import Scan, images_array, make_scans
from fieldnotes.vlm.fusion import BLIND, FUSIONS, FusionConfig
from fieldnotes.vlm.language import LanguageConfig, require_positive_ints
from fieldnotes.vlm.scaling import check_scaling_pairs
from fieldnotes.vlm.seeds import derive_seed
from fieldnotes.vlm.text import VQAItem, canonical_caption, make_captions, make_vqa
from fieldnotes.vlm.train import PRECISIONS
from fieldnotes.vlm.vision import VisionConfig


#: ExperimentSize's counts and step budgets, each an int >= 1.
_COUNTS = (
    "image_size", "n_caption_images", "n_train_images", "n_validation_images", "n_test_images",
    "n_general_images", "n_general_text", "questions_per_image", "batch_size", "lm_general_steps",
    "lm_medical_steps", "vision_general_steps", "clip_steps", "align_steps", "vqa_steps",
    "final_vqa_steps", "precision_steps", "scaling_vqa_steps", "ablation_seeds",
)  # fmt: skip


@dataclass(frozen=True)
class ExperimentSize:
    """Every count, step budget and model size of one run of the chapter (images in pixels).

    ``budget_fractions``: where along its one run every ablation cell is scored on the validation
    split, as fractions of ``final_vqa_steps`` (1.0, the final model's budget, must be one).
    ``check_vqa_steps``: the longer budget the cells of the ``check_fusions`` (and the blind LMs
    beside them) train on to, to check whether the verdict at the final budget holds there; the
    other fusions' cells stop at ``final_vqa_steps`` (``cell_budgets``). The lever verdict is read
    on the ``seed_fusions`` cells, so those must be among the ``check_fusions``.
    ``ablation_seeds``: pre-training seeds; seed 0 is the chapter's shared pre-training, every
    further seed re-pre-trains both encoders and both LMs (and fine-tunes with its own seed) and
    trains the cells of the ``seed_fusions`` only (the other fusions are trained at seed 0).
    ``scaling_pairs``: caption-pair counts of the data-scaling runs (medical-encoder pre-training
    and stage-1 alignment on that many pairs; VQA tuning for ``scaling_vqa_steps``), and
    ``scaling_noise`` the share of captions replaced by another scan's in the noisy-caption run."""

    image_size: int = 64
    n_caption_images: int = 2000
    n_train_images: int = 1500
    n_validation_images: int = 300
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
    final_vqa_steps: int = 500
    check_vqa_steps: int | None = 800
    precision_steps: int = 200
    lora_r: int = 0
    lr: float = 2e-3
    budget_fractions: tuple[float, ...] = (0.3, 0.6, 1.0)
    ablation_seeds: int = 2
    seed_fusions: tuple[str, ...] = ("qformer",)
    check_fusions: tuple[str, ...] = ("qformer",)
    ablation_fusions: tuple[str, ...] = FUSIONS
    ablation_encoders: tuple[str, ...] = ("general", "medical")
    ablation_lms: tuple[str, ...] = ("general", "medical")
    scaling_pairs: tuple[int, ...] = (250, 500, 1000, 2000)
    scaling_noise: float = 0.5
    scaling_vqa_steps: int = 250
    vision: VisionConfig = VisionConfig()
    language: LanguageConfig = LanguageConfig()
    fusion: FusionConfig = FusionConfig()

    def __post_init__(self):
        require_positive_ints(self, _COUNTS)
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not (
            math.isfinite(self.lr) and self.lr > 0
        ):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, int) or self.lora_r < 0:
            raise ValueError(f"lora_r must be an int >= 0 (0: full fine-tuning), got {self.lora_r!r}")
        fr = self.budget_fractions
        if not fr or any(not 0 < f <= 1 for f in fr) or 1.0 not in fr:
            raise ValueError(f"budget_fractions must lie in (0, 1] and include 1.0, got {fr!r}")
        check = self.check_vqa_steps
        if check is not None and (
            isinstance(check, bool) or not isinstance(check, int) or check <= self.final_vqa_steps
        ):
            raise ValueError(f"check_vqa_steps must be None or an int above final_vqa_steps "
                             f"({self.final_vqa_steps}), got {check!r}")  # fmt: skip
        for name in ("ablation_fusions", "seed_fusions", "check_fusions"):
            unknown = [f for f in getattr(self, name) if f not in FUSIONS]
            if unknown:
                raise ValueError(f"{name} must name fusions of {FUSIONS}, got {unknown}")
        unchecked = [f for f in self.seed_fusions if f not in self.check_fusions]
        if check is not None and unchecked:
            raise ValueError(f"seed_fusions {unchecked} must be among check_fusions {self.check_fusions!r}: "
                             "the lever verdict at check_vqa_steps is read on the seed_fusions cells")  # fmt: skip
        pairs = self.scaling_pairs
        if not pairs or any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in pairs):
            raise ValueError(f"scaling_pairs must be ints >= 2, got {pairs!r}")
        if not 0 < self.scaling_noise <= 1:
            raise ValueError(f"scaling_noise must be in (0, 1], got {self.scaling_noise!r}")
        check_scaling_pairs(pairs, self.n_caption_images)

    @property
    def budgets(self) -> tuple[int, ...]:
        """Stage-2 steps at which the ablation's cells are scored: the ``budget_fractions`` of
        ``final_vqa_steps`` and, when set, ``check_vqa_steps`` (the last, and the cells' length)."""
        steps = {max(1, round(f * self.final_vqa_steps)) for f in self.budget_fractions}
        if self.check_vqa_steps is not None:
            steps.add(self.check_vqa_steps)
        return tuple(sorted(steps))

    def cell_budgets(self, fusion: str) -> tuple[int, ...]:
        """The ``budgets`` at which a cell of ``fusion`` (or the blind LM, ``fusion.BLIND``) is scored;
        its run ends at the last: ``check_vqa_steps`` for the ``check_fusions`` and the blind LMs,
        ``final_vqa_steps`` for the other fusions."""
        if fusion == BLIND or fusion in self.check_fusions:
            return self.budgets
        return tuple(b for b in self.budgets if b <= self.final_vqa_steps)


SIZES: dict[str, ExperimentSize] = {
    "book": ExperimentSize(),
    "ci": ExperimentSize(
        n_caption_images=400,
        n_train_images=400,
        n_validation_images=60,
        n_test_images=80,
        n_general_images=400,
        n_general_text=800,
        lm_general_steps=60,
        lm_medical_steps=40,
        vision_general_steps=40,
        clip_steps=40,
        align_steps=20,
        vqa_steps=40,
        final_vqa_steps=80,
        check_vqa_steps=None,
        precision_steps=12,
        ablation_seeds=1,
        ablation_encoders=("general", "medical"),
        ablation_lms=("general", "medical"),
        ablation_fusions=("qformer",),
        scaling_pairs=(50, 100, 200, 400),
        scaling_vqa_steps=20,
    ),  # fmt: skip
}


def get_size(name: str, **overrides) -> ExperimentSize:
    """A named size ("ci" or "book") with fields overridden by keyword."""
    if name not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {name!r}")
    return replace(SIZES[name], **overrides)


class SplitCollision(ValueError):
    """A test split generated from a seed that a training or validation split also uses."""


@dataclass
class MedicalData:
    """Scans and text of one experiment: caption pairs, VQA train, validation and test sets, and the
    generator seed of every split (scans of different seeds never coincide)."""

    caption_scans: list[Scan]
    captions: list[str]
    train_scans: list[Scan]
    train_items: list[VQAItem]
    validation_scans: list[Scan]
    validation_items: list[VQAItem]
    test_scans: list[Scan]
    test_items: list[VQAItem]
    split_seeds: dict[str, int] = field(default_factory=dict)


def split_seeds(seed: int, test_seed: int | None = None) -> dict[str, int]:
    """Generator seed of every split: derived from ``seed`` by purpose, the test split's from
    ``test_seed`` when given. Raises ``SplitCollision`` when two splits would share a seed."""
    seeds = {
        name: derive_seed(seed, f"{name} scans") for name in ("caption", "train", "validation")
    }
    derived = dict(seeds)
    for a, b in ((a, b) for a in derived for b in derived if a < b):
        if derived[a] == derived[b]:
            raise SplitCollision(
                f"seed {seed}: the {a} and {b} splits share generator seed {derived[a]}"
            )
    seeds["test"] = derive_seed(seed, "test scans") if test_seed is None else test_seed
    for name, value in derived.items():
        if seeds["test"] == value:
            raise SplitCollision(f"test seed {seeds['test']} generates the same scans as the {name} split "
                                 f"of seed {seed}; choose another test seed")  # fmt: skip
    return seeds


def make_medical_data(size: ExperimentSize, seed: int, test_seed: int | None = None) -> MedicalData:
    """Generate all medical data: caption, train, validation and test splits from disjoint generator
    seeds (``split_seeds``); the collision check always runs."""
    seeds = split_seeds(seed, test_seed)
    n = {"caption": size.n_caption_images, "train": size.n_train_images,
         "validation": size.n_validation_images, "test": size.n_test_images}  # fmt: skip
    scans = {k: make_scans(n[k], v, size.image_size) for k, v in seeds.items()}
    items = {k: make_vqa(scans[k], derive_seed(v, f"{k} questions"), size.questions_per_image)
             for k, v in seeds.items() if k != "caption"}  # fmt: skip
    return MedicalData(
        scans["caption"], make_captions(scans["caption"], derive_seed(seed, "captions")),
        scans["train"], items["train"], scans["validation"], items["validation"],
        scans["test"], items["test"], seeds,
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


def pretrain(
    size: ExperimentSize, data: MedicalData, seed: int, progress: bool = True
) -> Pretrained:
    """Train the tokenizer, both LMs and both encoders once, and cache every split's image tokens;
    ``progress``: show a progress bar per pre-training."""
    import torch

    from fieldnotes.book import seed_everything
    from fieldnotes.vlm.evaluate import prompt_text
    from fieldnotes.vlm.language import (
        build_language_model,
        pretrain_language_model,
        train_tokenizer,
    )
    from fieldnotes.vlm.shapes import make_shape_images, shape_captions, shape_labels, shape_vqa
    from fieldnotes.vlm.text import general_text, medical_text
    from fieldnotes.vlm.vision import VisionEncoder, encode_images, pretrain_clip, pretrain_general

    seed_everything(derive_seed(seed, "pre-training"))
    shapes = make_shape_images(
        size.n_general_images, derive_seed(seed, "general shapes"), size.image_size
    )
    gen_caps = shape_captions(shapes, derive_seed(seed, "shape captions"))
    gen_items = shape_vqa(shapes, derive_seed(seed, "shape questions"))
    gen_text = general_text(size.n_general_text, derive_seed(seed, "general text"))
    med_text = medical_text(data.caption_scans, derive_seed(seed, "medical text"))
    vocab_texts = gen_text + med_text + data.captions + gen_caps
    vocab_texts += [
        prompt_text(it.question) + " " + it.answer for it in data.train_items + gen_items
    ]
    tok = train_tokenizer(vocab_texts)
    curves: dict[str, list[float]] = {}
    torch.manual_seed(derive_seed(seed, "LM init"))
    lm = build_language_model(len(tok), size.language)
    curves["lm general"] = pretrain_language_model(lm, tok, gen_text, size.lm_general_steps, size.batch_size,
                                                   size.lr, derive_seed(seed, "general LM"), desc="general LM",
                                                   progress=progress)  # fmt: skip
    lm_state = {"general": copy.deepcopy(lm.state_dict())}
    curves["lm medical"] = pretrain_language_model(lm, tok, med_text, size.lm_medical_steps, size.batch_size,
                                                   size.lr, derive_seed(seed, "medical LM"), desc="medical LM",
                                                   progress=progress)  # fmt: skip
    lm_state["medical"] = copy.deepcopy(lm.state_dict())

    shape_imgs = images_array(shapes)
    torch.manual_seed(derive_seed(seed, "general encoder init"))
    general = VisionEncoder(size.vision)
    curves["vision general"] = pretrain_general(general, shape_imgs, shape_labels(shapes), size.vision_general_steps,
                                                64, size.lr, derive_seed(seed, "general encoder"), progress)  # fmt: skip
    torch.manual_seed(derive_seed(seed, "medical encoder init"))
    medical = VisionEncoder(size.vision)
    cap_imgs = images_array(data.caption_scans)
    keys = [canonical_caption(s) for s in data.caption_scans]
    curves["vision medical (CLIP)"] = pretrain_clip(medical, cap_imgs, data.captions, keys, tok, size.clip_steps,
                                                    64, size.lr, derive_seed(seed, "medical encoder"), progress=progress)  # fmt: skip
    # "random": the same ViT with no pre-training at all (the post's "or not at all" baseline)
    torch.manual_seed(derive_seed(seed, "random encoder init"))
    encoders = {"general": general, "medical": medical, "random": VisionEncoder(size.vision)}
    splits = {"caption": cap_imgs, "train": images_array(data.train_scans),
              "validation": images_array(data.validation_scans), "test": images_array(data.test_scans)}  # fmt: skip
    feats = {}
    for name, enc in encoders.items():
        enc.requires_grad_(False)
        for split, imgs in splits.items():
            feats[(name, split)] = encode_images(enc, imgs)
    feats[("general", "shapes")] = encode_images(general, shape_imgs)
    return Pretrained(tok, lm_state, encoders, feats, curves, shape_imgs, gen_caps, gen_items)


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


@dataclass(frozen=True)
class VLMRunConfig:
    """One VLM training run: which parts (encoder, LM, fusion or "none" for question only), its
    seed, the stage-2 budget in steps (None: the size's ``vqa_steps``), the training precision
    ("fp32", "bf16" or "fp16" with a gradient scaler), the memory switch, a checkpoint folder, and
    the torch device it trains on."""

    encoder: str = "medical"
    lm: str = "medical"
    fusion: str = "qformer"
    seed: int = 0
    vqa_steps: int | None = None
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    checkpoint_dir: str | None = None
    progress: bool = True
    device: str = "cpu"

    def __post_init__(self):
        if self.fusion not in (*FUSIONS, BLIND):
            raise ValueError(f"fusion must be one of {(*FUSIONS, BLIND)}, got {self.fusion!r}")
        steps = self.vqa_steps
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise ValueError(f"vqa_steps must be None or a positive int, got {steps!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def name(self) -> str:
        """How the run is labelled in tables."""
        if self.fusion == BLIND:
            return f"{self.lm} LM, question only (no image)"
        return f"{self.encoder} encoder + {self.lm} LM + {self.fusion}"

    def fingerprint(self, size: ExperimentSize, stage: str) -> str:
        """What a checkpoint of ``stage`` must have been written for: every field that changes the
        weights (not the folder, progress bars or device) and the experiment size."""
        fields = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("checkpoint_dir", "progress", "device")
        }
        return f"{stage} {json.dumps(fields, sort_keys=True)} {size!r}"


@dataclass
class TrainedVLM:
    """A trained model, its loss per step in both stages, stage 2's throughput (samples/s), the step
    each stage resumed from (0: trained from scratch) and stage 2's FP16 record (gradient scale per
    step and the steps skipped on overflow; empty for FP32/BF16)."""

    model: object
    align_losses: list[float]
    vqa_losses: list[float]
    samples_per_second: float
    resumed_from: dict[str, int] = field(default_factory=dict)
    vqa_scales: list[float] = field(default_factory=list)
    vqa_skipped_steps: list[int] = field(default_factory=list)


def train_vlm(pre: Pretrained, size: ExperimentSize, run: VLMRunConfig, caption_feats, captions: list[str],
              vqa_feats, vqa_items: list[VQAItem], probe=None) -> TrainedVLM:  # fmt: skip
    """Stage 1 (align the fusion on captions; skipped for the question-only model, which has no
    fusion) then stage 2 (VQA tuning of fusion + LM), on ``run.device``. ``probe(model, k)``, when
    given, is called after the k-th stage-2 step (it must not change the weights)."""
    import torch

    from fieldnotes.book import seed_everything
    from fieldnotes.vlm.evaluate import prompt_text
    from fieldnotes.vlm.language import build_language_model
    from fieldnotes.vlm.model import MedVLM, set_stage
    from fieldnotes.vlm.train import TrainConfig, train_loop

    if run.encoder not in pre.encoders or run.lm not in pre.lm_state:
        raise ValueError(f"encoder must be in {sorted(pre.encoders)} and lm in {sorted(pre.lm_state)}, "
                         f"got {run.encoder!r}, {run.lm!r}")  # fmt: skip
    device = torch.device(run.device)
    seed_everything(derive_seed(run.seed, "VLM init"))
    tok = pre.tokenizer
    language = build_language_model(len(tok), size.language)
    language.load_state_dict(pre.lm_state[run.lm])
    if run.gradient_checkpointing:
        language.gradient_checkpointing_enable()
        language.config.use_cache = False
    model = MedVLM(language, replace(size.fusion, kind=run.fusion), size.vision.hidden).to(device)
    bs = size.batch_size

    def sampler(n: int, purpose: str):
        base = derive_seed(run.seed, purpose)
        return lambda step: {
            "idx": torch.as_tensor(np.random.default_rng([base, step]).integers(0, n, bs))
        }

    def checkpoint(stage: str) -> dict:
        folder = f"{run.checkpoint_dir}/{stage}" if run.checkpoint_dir else None
        return {"checkpoint_dir": folder, "checkpoint_every": 10 if folder else 0,
                "fingerprint": run.fingerprint(size, stage), "precision": run.precision}  # fmt: skip

    losses1: list[float] = []
    resumed = {}
    if run.fusion != BLIND:
        c_ids, c_mask, c_lab = (
            t.to(device) for t in _seq_batches(tok, ["caption :"] * len(captions), captions)
        )
        c_feats = caption_feats.to(device)

        def loss1(b):
            idx = b["idx"].to(device)
            return model(c_ids[idx], c_mask[idx], c_lab[idx], features=c_feats[idx]).loss

        cfg1 = TrainConfig(steps=size.align_steps, lr=size.lr, seed=derive_seed(run.seed, "alignment"),
                           progress=run.progress, **checkpoint("stage1"))  # fmt: skip
        r1 = train_loop(set_stage(model, 1), loss1, sampler(len(c_ids), "alignment batches"), cfg1,
                        desc=f"align {run.fusion}")  # fmt: skip
        losses1, resumed["stage1"] = r1.losses, r1.resumed_from
    v_ids, v_mask, v_lab = (t.to(device) for t in _seq_batches(
        tok, [prompt_text(it.question) for it in vqa_items], [it.answer for it in vqa_items]))  # fmt: skip
    v_img = torch.tensor([it.image for it in vqa_items], device=device)
    v_feats = vqa_feats.to(device)

    def loss2(b):
        idx = b["idx"].to(device)
        return model(v_ids[idx], v_mask[idx], v_lab[idx], features=v_feats[v_img[idx]]).loss

    cfg2 = TrainConfig(steps=run.vqa_steps or size.vqa_steps, lr=size.lr, seed=derive_seed(run.seed, "VQA tuning"),
                       progress=run.progress, **checkpoint("stage2"))  # fmt: skip
    r2 = train_loop(set_stage(model, 2, size.lora_r), loss2, sampler(len(v_ids), "VQA batches"), cfg2,
                    desc=f"VQA {run.fusion}", on_step=None if probe is None else lambda k: probe(model, k))  # fmt: skip
    resumed["stage2"] = r2.resumed_from
    return TrainedVLM(model, losses1, r2.losses, r2.samples_per_second, resumed, r2.scales,
                      r2.skipped_steps)  # fmt: skip


@dataclass
class RunResult:
    """One trained VLM: its metrics on the evaluated split, predictions, loss curves, throughput,
    the step each training stage resumed from (0: from scratch), stage 2's FP16 record (gradient
    scale per step, steps skipped on overflow; empty for FP32/BF16), the training precision, and
    the predictions on the same split after each stage-2 budget asked for (steps -> answers; the
    last budget's are ``predictions``), and the configuration it was trained with (``run``)."""

    name: str
    model: object
    metrics: dict
    predictions: list[str]
    align_losses: list[float]
    vqa_losses: list[float]
    samples_per_second: float
    trainable_parameters: int
    total_parameters: int
    resumed_from: dict[str, int] = field(default_factory=dict)
    vqa_scales: list[float] = field(default_factory=list)
    vqa_skipped_steps: list[int] = field(default_factory=list)
    precision: str = "fp32"
    predictions_at: dict[int, list[str]] = field(default_factory=dict)
    run: VLMRunConfig | None = None


SPLITS: tuple[str, ...] = ("validation", "test")


def run_config(pre: Pretrained, data: MedicalData, size: ExperimentSize, run: VLMRunConfig,
               split: str = "validation", budgets: tuple[int, ...] = ()) -> RunResult:  # fmt: skip
    """Train one configuration on the medical training split and evaluate it on ``split``
    ("validation" for choosing between configurations, "test" only for the chosen one), also
    after each stage-2 step count in ``budgets`` along the same run (``RunResult.predictions_at``)."""
    from fieldnotes.vlm.evaluate import answer_questions, vqa_metrics
    from fieldnotes.vlm.model import count_parameters

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    steps = run.vqa_steps or size.vqa_steps
    bad = [
        b for b in budgets if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= steps
    ]
    if bad:
        raise ValueError(
            f"budgets must be step counts in [1, {steps}] (the run's vqa_steps), got {bad}"
        )
    enc = run.encoder
    items = data.validation_items if split == "validation" else data.test_items
    feats = pre.features[(enc, split)]
    along: dict[int, list[str]] = {}

    def probe(model, k: int) -> None:
        if k in budgets:
            along[k] = answer_questions(model, pre.tokenizer, feats, items)

    t = train_vlm(pre, size, run, pre.features[(enc, "caption")], data.captions,
                  pre.features[(enc, "train")], data.train_items, probe if budgets else None)  # fmt: skip
    preds = (
        along[steps] if steps in along else answer_questions(t.model, pre.tokenizer, feats, items)
    )
    return RunResult(run.name, t.model, vqa_metrics(items, preds, run.seed), preds, t.align_losses, t.vqa_losses,
                     t.samples_per_second, count_parameters(t.model, True), count_parameters(t.model),
                     t.resumed_from, t.vqa_scales, t.vqa_skipped_steps, run.precision, along, run)  # fmt: skip


def compare_precisions(pre: Pretrained, data: MedicalData, size: ExperimentSize, run: VLMRunConfig,
                       precisions: tuple[str, ...] = PRECISIONS) -> dict[str, RunResult]:  # fmt: skip
    """``run`` (the final configuration: same seed, same batches) trained for ``size.precision_steps``
    VQA steps in each of ``precisions`` and scored on the validation split; precision -> result.
    FP16 trains with a dynamic gradient scaler (``RunResult.vqa_scales``, ``vqa_skipped_steps``)."""
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise ValueError(
            f"precisions must be a non-empty subset of {PRECISIONS}, got {precisions!r}"
        )
    return {p: run_config(pre, data, size, replace(run, precision=p, vqa_steps=size.precision_steps))
            for p in precisions}  # fmt: skip


def run_zero_shot(
    pre: Pretrained, data: MedicalData, size: ExperimentSize, run: VLMRunConfig
) -> RunResult:
    """The general VLM (general encoder + LM, aligned and tuned on the shapes domain) asked the
    medical test questions; ``run``'s encoder and LM are replaced by the general ones."""
    from fieldnotes.vlm.evaluate import answer_questions, vqa_metrics
    from fieldnotes.vlm.model import count_parameters

    run = replace(run, encoder="general", lm="general")
    feats = pre.features[("general", "shapes")]
    t = train_vlm(pre, size, run, feats, pre.general_captions, feats, pre.general_items)
    preds = answer_questions(
        t.model, pre.tokenizer, pre.features[("general", "test")], data.test_items
    )
    return RunResult("general VLM, zero-shot", t.model, vqa_metrics(data.test_items, preds, run.seed), preds,
                     t.align_losses, t.vqa_losses, t.samples_per_second, count_parameters(t.model, True),
                     count_parameters(t.model))  # fmt: skip


def majority_baseline(data: MedicalData, split: str = "validation") -> dict:
    """``vqa_metrics`` of the majority answer per question string (from the training split) on ``split``."""
    from fieldnotes.vlm.baselines import majority_answers
    from fieldnotes.vlm.evaluate import vqa_metrics

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    items = data.validation_items if split == "validation" else data.test_items
    return vqa_metrics(items, majority_answers(data.train_items, items))


ABLATION_METRICS: tuple[str, ...] = ("closed accuracy", "open exact match", "overall accuracy",
                                     "open token recall")  # fmt: skip


def pretrain_seeds(
    size: ExperimentSize, data: MedicalData, seed: int, shared: Pretrained, progress: bool = True
) -> list[Pretrained]:
    """The ablation's ``size.ablation_seeds`` pre-trainings: ``shared`` (the chapter's, seed index 0)
    and, for every further index s, both encoders and both LMs pre-trained again from
    ``derive_seed(seed, "pre-training seed s")`` (new initial weights, shape images, general text
    and batches; the medical data stays the same, so every seed is scored on the same questions)."""
    return [shared] + [pretrain(size, data, derive_seed(seed, f"pre-training seed {s}"), progress)
                       for s in range(1, size.ablation_seeds)]  # fmt: skip


@dataclass
class Ablation:
    """The ablation's runs: ``table`` has one row per (encoder, LM, fusion, seed, steps) with the
    validation scores (fractions) after that many stage-2 steps of the cell's one run;
    ``correct`` holds, under the same key, 1.0/0.0 per validation question (exact match), in the
    order of ``MedicalData.validation_items``, for bootstrap intervals over questions.
    The controls beside it, on the same questions: ``blind`` (LM, seed, steps) -> the records of
    that LM trained on the same VQA with zero image tokens (same fine-tuning seed and schedule as the
    seed's cells); ``majority`` the records of the majority answer per question; ``shuffled``
    (encoder, LM, fusion, seed) -> the records of the cell at its run's last budget scored once
    more with every scan's image tokens swapped for another scan's (``controls.shuffled_features``);
    ``blind_metrics`` name -> ``vqa_metrics`` of the majority answer and of each blind LM at
    seed 0 after ``blind_steps`` steps (the final budget), the reference lines of the figures."""

    table: object
    correct: dict[tuple[str, str, str, int, int], np.ndarray]
    blind: dict[tuple[str, int, int], np.ndarray]
    majority: np.ndarray
    shuffled: dict[tuple[str, str, str, int], np.ndarray]
    blind_metrics: dict[str, dict]


def run_ablation(pres: list[Pretrained], data: MedicalData, size: ExperimentSize, seed: int,
                 progress: bool = True) -> Ablation:  # fmt: skip
    """Every (encoder, LM, fusion) cell of the grid at seed index 0, and those of
    ``size.seed_fusions`` at every further one (seed index s: pre-training ``pres[s]`` and the
    fine-tuning seed ``derive_seed(seed, "ablation run s")``), each trained once to the last of
    its ``size.cell_budgets(fusion)`` (``check_vqa_steps`` for the ``check_fusions``, else
    ``final_vqa_steps``) and scored on the validation split at each of them along that run (no
    cell is retrained per budget). Cells of one seed share their fine-tuning seed, so they are
    compared on paired runs. Beside them (``Ablation.blind``, ``shuffled``, ``majority``): each LM
    of the grid trained with zero image tokens at every seed to the last of ``size.budgets``, and
    each cell scored once more on shuffled scans at the end of its run."""
    import pandas as pd
    from tqdm.auto import tqdm

    from fieldnotes.vlm.baselines import majority_answers
    from fieldnotes.vlm.controls import shuffled_features
    from fieldnotes.vlm.evaluate import answer_questions, vqa_metrics
    from fieldnotes.vlm.text import normalize_answer

    items = data.validation_items
    truth = [normalize_answer(it.answer) for it in items]

    def records(preds: list[str]) -> np.ndarray:
        return np.array([p == t for p, t in zip(preds, truth, strict=True)], dtype=float)

    majority_preds = majority_answers(data.train_items, items)
    blind, blind_metrics = {}, {"majority answer per question": vqa_metrics(items, majority_preds)}
    for s in range(len(pres)):
        for m in size.ablation_lms:
            budgets = size.cell_budgets(BLIND)
            run = VLMRunConfig("medical", m, BLIND, derive_seed(seed, f"ablation run {s}"), budgets[-1],
                               progress=False)  # fmt: skip
            r = run_config(pres[s], data, size, run, "validation", budgets)
            for steps, preds in r.predictions_at.items():
                blind[(m, s, steps)] = records(preds)
            if s == 0:
                blind_metrics[run.name] = vqa_metrics(
                    items, r.predictions_at[size.final_vqa_steps], run.seed
                )
    rows, correct, shuffled = [], {}, {}
    grid = [(e, m, f, s) for s in range(len(pres)) for e in size.ablation_encoders for m in size.ablation_lms
            for f in size.ablation_fusions if s == 0 or f in size.seed_fusions]  # fmt: skip
    for e, m, f, s in tqdm(grid, desc="ablation", disable=not progress):
        budgets = size.cell_budgets(f)
        run = VLMRunConfig(
            e, m, f, derive_seed(seed, f"ablation run {s}"), budgets[-1], progress=False
        )
        r = run_config(pres[s], data, size, run, "validation", budgets)
        swapped = shuffled_features(pres[s].features[(e, "validation")], run.seed)
        shuffled[(e, m, f, s)] = records(
            answer_questions(r.model, pres[s].tokenizer, swapped, items)
        )
        for steps, preds in sorted(r.predictions_at.items()):
            metrics = vqa_metrics(items, preds, run.seed)
            correct[(e, m, f, s, steps)] = records(preds)
            rows.append({"encoder": e, "language model": m, "fusion": f, "seed": s, "steps": steps,
                         **{k: metrics[k.replace(" ", "_")] for k in ABLATION_METRICS},
                         "samples/s": r.samples_per_second, "trainable parameters": r.trainable_parameters})  # fmt: skip
    return Ablation(
        pd.DataFrame(rows), correct, blind, records(majority_preds), shuffled, blind_metrics
    )


def at_budget(table, steps: int):
    """The rows of an ``Ablation.table`` after ``steps`` stage-2 steps (one row per cell and seed)."""
    rows = table[table["steps"] == steps]
    if len(rows) == 0:
        raise ValueError(
            f"steps must be one of the budgets scored, {sorted(set(table['steps']))}, got {steps!r}"
        )
    return rows.drop(columns="steps").reset_index(drop=True)


def summarize_ablation(df):
    """Mean and standard deviation over seeds per (encoder, LM, fusion) cell and budget, from an
    ``Ablation.table``."""
    metrics = list(ABLATION_METRICS)
    g = df.groupby(["encoder", "language model", "fusion", "steps"])[metrics]
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


def precision_record(r: RunResult) -> dict:
    """The precision a run trained in and, for FP16, the gradient scaler's record: steps skipped on
    overflow (count and indices) and the scale at the first and last step (None otherwise)."""
    fp16 = r.precision == "fp16"
    return {"precision": r.precision, "loss_scale_skips": len(r.vqa_skipped_steps) if fp16 else None,
            "skipped_steps": list(r.vqa_skipped_steps) if fp16 else None,
            "gradient_scale_first": float(r.vqa_scales[0]) if fp16 else None,
            "gradient_scale_last": float(r.vqa_scales[-1]) if fp16 else None}  # fmt: skip


def run_chapter(
    size: ExperimentSize,
    seed: int = 0,
    test_seed: int | None = None,
    only_final: bool = False,
    progress: bool = True,
    precision: str = "fp32",
) -> dict:
    """Pre-training, the final configuration (trained in ``precision``) on the test split (from
    ``test_seed`` when given) with its ``precision`` record, the blind baselines beside it
    (``question_only``: the medical LM with zero image tokens, same budget; ``majority_answer``),
    the zero-shot general VLM and (unless ``only_final``) on the validation split: the ablation
    at every budget (``ablation``, ``ablation_summary``), its blind baselines at the final budget,
    which part is the larger lever per budget (``levers``, when the grid varies both) and the data
    scaling (``data_scaling``); returns a JSON-ready dict. Raises ``SplitCollision`` before any
    training when ``test_seed`` reuses a training split."""
    from fieldnotes.vlm.controls import image_dependence
    from fieldnotes.vlm.levers import lever_table
    from fieldnotes.vlm.scaling import data_scaling

    data = make_medical_data(size, seed, test_seed)
    pre = pretrain(size, data, seed, progress)
    out: dict = {
        "size": {k: v for k, v in vars(size).items() if isinstance(v, int | float | str)},
        "seed": seed,
        "test_seed": data.split_seeds["test"],
        "split_seeds": data.split_seeds,
    }
    final = VLMRunConfig(seed=derive_seed(seed, "final run"), vqa_steps=size.final_vqa_steps,
                         precision=precision, progress=progress)  # fmt: skip
    final_result = run_config(pre, data, size, final, "test")
    out["final"] = _summary(final_result)
    out["precision"] = precision_record(final_result)
    blind = replace(final, fusion=BLIND, seed=derive_seed(seed, "question-only run"))
    question_only = run_config(pre, data, size, blind, "test")
    out["question_only"] = _summary(question_only)
    out["majority_answer"] = {
        "name": "majority answer per question",
        **majority_baseline(data, "test"),
    }
    zero = VLMRunConfig(seed=derive_seed(seed, "zero-shot run"), progress=progress)
    out["zero_shot"] = _summary(run_zero_shot(pre, data, size, zero))
    out["pretraining_final_loss"] = {k: v[-1] for k, v in pre.curves.items()}
    if not only_final:
        abl = run_ablation(
            pretrain_seeds(size, data, seed, pre, progress), data, size, seed, progress=progress
        )
        out["ablation"] = abl.table.to_dict(orient="records")
        out["ablation_summary"] = summarize_ablation(abl.table).to_dict(orient="records")
        out["ablation_blind_baselines"] = abl.blind_metrics
        out["image_dependence"] = image_dependence(abl.correct, abl.shuffled).to_dict(
            orient="records"
        )
        if {"general", "medical"} <= set(size.ablation_encoders) & set(size.ablation_lms):
            out["levers"] = lever_table(abl.correct, abl.blind, abl.majority, seed=seed).to_dict(
                orient="records"
            )
        out["data_scaling"] = data_scaling(pre, data, size, seed, progress).to_dict(
            orient="records"
        )
    return out
