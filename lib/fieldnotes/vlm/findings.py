"""What the run's tables say, in words the prose can paste: verdicts computed from this run.

The chapter's prose never states a comparison it did not compute. These functions turn the
ablation table (one row per run) and the final model's metrics into numbers (accuracies as
fractions, effects in percentage points) and short sentences that stay true at any size, seed
or grid — including the reduced CI grid, where some choices are not varied at all.
"""

from __future__ import annotations

import math

import numpy as np

#: The three choices of the ablation, as columns of ``pipeline.run_ablation``'s table.
FACTORS = ("encoder", "language model", "fusion")
#: Question types that ask *what* is shown, and those that ask *where* it is.
WHAT_TYPES = ("modality", "finding", "organ")
WHERE_TYPES = ("side", "location")


def _check_table(df) -> None:
    missing = [c for c in (*FACTORS, "seed", "overall accuracy") if c not in df.columns]
    if missing:
        raise ValueError(f"ablation table lacks columns {missing}; expected run_ablation's table")
    if len(df) == 0:
        raise ValueError("ablation table is empty; expected at least one run")


def common_seeds(df) -> list[int]:
    """The pre-training seeds at which every (encoder, LM, fusion) cell of ``df`` was trained."""
    _check_table(df)
    per_cell = df.groupby(list(FACTORS))["seed"].agg(lambda s: set(s))
    return sorted(set.intersection(*per_cell))


def like_with_like(df):
    """The rows of ``df`` at the seeds every cell shares (``common_seeds``), so that a mean over one
    choice's levels averages the same seeds for every level and no cell counts more than once per
    seed. Raises ``ValueError`` when the cells share no seed."""
    seeds = common_seeds(df)
    if not seeds:
        raise ValueError(
            "the ablation's cells share no pre-training seed, so they cannot be compared"
        )
    return df[df["seed"].isin(seeds)]


def factor_effects(df):
    """Per choice: its levels' mean overall accuracy (over everything else, at the seeds every cell
    shares, ``like_with_like``) and their spread (fraction)."""
    import pandas as pd

    df = like_with_like(df)
    rows = []
    for factor in FACTORS:
        means = df.groupby(factor)["overall accuracy"].mean()
        rows.append({"factor": factor, "levels": ", ".join(f"{k}: {v:.1%}" for k, v in means.items()),
                     "spread (max − min)": float(means.max() - means.min())})  # fmt: skip
    return pd.DataFrame(rows)


def swap_effects(df, factor: str, low: str = "general", high: str = "medical") -> list[float]:
    """Overall accuracy of ``high`` minus ``low`` (points) for each combination of the other choices
    in which both were trained (means over the seeds every cell shares); empty if ``factor`` was
    not varied so."""
    df = like_with_like(df)
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
    means = df.groupby(list(FACTORS))["overall accuracy"].mean().unstack(factor)
    if low not in means.columns or high not in means.columns:
        return []
    return [float(d) * 100 for d in (means[high] - means[low]).dropna()]


def _points(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return (
        f"{lo:+.1f} points"
        if math.isclose(lo, hi, abs_tol=0.05)
        else f"{lo:+.1f} to {hi:+.1f} points"
    )


def _swap_sentence(df, factor: str, others: str) -> str:
    effects = swap_effects(df, factor)
    if not effects:
        levels = sorted(df[factor].unique())
        return (f"The {factor} was not varied between general and medical at this size "
                f"(only the {' and '.join(levels)} {factor} was trained).")  # fmt: skip
    where = (f"across the {len(effects)} {others} combinations" if len(effects) > 1
             else f"in the one {others} combination trained")  # fmt: skip
    return (f"Swapping the general {factor} for the medical one changed overall accuracy by "
            f"{_points(effects)} {where}.")  # fmt: skip


def ablation_verdict(df, size_name: str, seed: int) -> dict[str, object]:
    """The ablation's verdict for the prose: grid description, largest lever and its spread (points),
    a sentence per choice and whether the post's lesson (domain parts beat fusion) holds here."""
    _check_table(df)
    runs = len(df)
    extra = len(df) - len(like_with_like(df))
    df = like_with_like(df)
    effects = factor_effects(df).set_index("factor")["spread (max − min)"] * 100
    levels = {f: sorted(df[f].unique()) for f in FACTORS}
    varied = [f for f in FACTORS if len(levels[f]) > 1]
    seeds = len(common_seeds(df))
    every = all(set(levels[f]) >= want for f, want in zip(FACTORS, ({"general", "medical"},) * 2 + ({"xattn", "qformer", "linear"},), strict=True))  # fmt: skip
    shape = "every encoder × LM × fusion cell" if every else "a reduced grid, not the full ablation"
    grid = (f"{size_name} size, seed {seed}, {runs} runs: {shape}, compared here at the "
            f"{seeds} pre-training seed{'s' if seeds > 1 else ''} all cells share"
            + (f" ({extra} runs at further seeds enter only the lever table)" if extra else ""))  # fmt: skip

    top_spread = max((float(effects[f]) for f in varied), default=0.0)
    tops = [f for f in varied if math.isclose(float(effects[f]), top_spread, abs_tol=1e-9)]
    if not varied:
        top = "none, only one configuration was trained"
    elif top_spread == 0:
        top = (
            "none, every level of "
            + " and ".join(f"the {f}" for f in varied)
            + " gave the same mean"
        )
    elif len(tops) > 1:
        top = "a tie between " + " and ".join(f"the {f}" for f in tops)
    else:
        top = f"the {tops[0]}" + (
            ", the only choice varied at this size" if len(varied) == 1 else ""
        )

    if "fusion" in varied:
        cells = df.groupby(list(FACTORS))["overall accuracy"]
        spread = (
            cells.mean().groupby(["encoder", "language model"]).agg(lambda s: s.max() - s.min())
            * 100
        )
        sd = float(cells.std(ddof=1).mean()) * 100 if seeds > 1 else float("nan")
        if seeds > 1:
            inside = int((spread <= 2 * sd).sum())
            fusion = (f"Within each encoder/LM pair the fusions landed at most {spread.max():.1f} points apart; "
                      f"in {inside} of the {len(spread)} pairs that spread is within twice the mean "
                      f"seed-to-seed standard deviation of a cell ({2 * sd:.1f} points).")  # fmt: skip
        else:
            fusion = (f"Within each encoder/LM pair the fusions landed at most {spread.max():.1f} points apart; "
                      "with one seed per cell there is no seed spread to compare that with.")  # fmt: skip
    else:
        fusion = f"Only one fusion ({levels['fusion'][0]}) was trained at this size, so the fusions are not compared."

    levers = [f for f in ("encoder", "language model") if {"general", "medical"} <= set(levels[f])]
    if "fusion" not in varied or not levers:
        lesson = ("cannot be tested at this size: the reduced grid does not vary both a domain part "
                  "and the fusion")  # fmt: skip
    else:
        gain = {f: sum(swap_effects(df, f)) / len(swap_effects(df, f)) for f in levers}
        moved = fusion_gap(df)
        holds = [f for f in levers if gain[f] > moved]
        fails = [f for f in levers if f not in holds]
        by = " and ".join(f"{gain[f]:+.1f} points with the medical {f}" for f in levers)
        numbers = (f"averaged over the rest, accuracy moved by {by}, against {moved:.1f} points between two "
                   "fusions (the mean over the pairs of fusions of the gap between their means, each also a "
                   "two-level difference; a domain part counts only when its gain is positive and larger)")  # fmt: skip
        if not fails:
            verdict = "holds"
        elif holds:
            verdict = f"holds for the {' and '.join(holds)} but not for the {' and '.join(fails)}"
        else:
            verdict = "does not hold"
        lesson = f"{verdict}: {numbers}"
    return {
        "grid": grid,
        "top_factor": top,
        "top_spread": top_spread,
        "lm": _swap_sentence(df, "language model", "encoder/fusion"),
        "encoder": _swap_sentence(df, "encoder", "LM/fusion"),
        "fusion": fusion,
        "lesson": lesson,
    }


def fusion_gap(df) -> float:
    """The mean, over every pair of fusions, of the absolute gap between their mean overall
    accuracies (points; at the seeds every cell shares): a two-level difference like the encoder's
    or the LM's, not the range over three levels, which grows with the number of levels."""
    means = like_with_like(df).groupby("fusion")["overall accuracy"].mean()
    if len(means) < 2:
        raise ValueError(f"fusion_gap needs at least 2 fusions, got {list(means.index)}")
    gaps = [abs(a - b) for i, a in enumerate(means) for b in list(means)[i + 1 :]]
    return float(np.mean(gaps)) * 100


def _pooled(by_type: dict, types: tuple[str, ...]) -> float:
    """Accuracy over all questions of ``types`` (closed and open), weighted by their counts."""
    parts = [v for k, v in by_type.items() if k.split("/")[0] in types]
    n = sum(v["n"] for v in parts)
    if n == 0:
        raise ValueError(f"no questions of types {types} in the metrics")
    return sum(v["accuracy"] * v["n"] for v in parts) / n


def compare(a: float, b: float, *, tol: float = 1e-9) -> str:
    """'better than', 'worse than' or 'exactly as well as': how accuracy ``a`` compares with ``b``."""
    if math.isclose(a, b, abs_tol=tol):
        return "exactly as well as"
    return "better than" if a > b else "worse than"


def weak_spots(metrics: dict) -> dict[str, object]:
    """Per-type figures of a model's ``vqa_metrics``: laterality, X-ray, modality, the weakest type,
    and how *what* questions compare with *where* questions (fractions and a phrase)."""
    by_type, by_mod = metrics["by_question_type"], metrics["by_modality"]
    need = ["side/open", "location/open", "modality/closed", "modality/open"]
    missing = [k for k in need if k not in by_type] + [
        k for k in ("x-ray/closed", "x-ray/open") if k not in by_mod
    ]
    if missing:
        raise ValueError(f"metrics lack question groups {missing}; the test set is too small")
    weakest = min(by_type, key=lambda k: (by_type[k]["accuracy"], k))
    kind, answer = weakest.split("/")
    what, where = _pooled(by_type, WHAT_TYPES), _pooled(by_type, WHERE_TYPES)
    return {
        "side_acc": by_type["side/open"]["accuracy"],
        "location_acc": by_type["location/open"]["accuracy"],
        "modality_closed_acc": by_type["modality/closed"]["accuracy"],
        "modality_open_acc": by_type["modality/open"]["accuracy"],
        "xray_closed_acc": by_mod["x-ray/closed"]["accuracy"],
        "xray_open_acc": by_mod["x-ray/open"]["accuracy"],
        "weakest_type": f"{kind} ({answer})",
        "weakest_acc": by_type[weakest]["accuracy"],
        "what_acc": what,
        "where_acc": where,
        "what_vs_where": compare(what, where),
    }


def against_blind(
    summary, baselines: dict[str, dict], metric: str = "overall accuracy"
) -> dict[str, object]:
    """How the ablation's cells (``pipeline.summarize_ablation``) compare with the strongest blind
    baseline (name -> ``vqa_metrics``, same split) on ``metric``: counts, the baseline, a sentence."""
    if not baselines:
        raise ValueError("baselines is empty; expected at least one blind baseline")
    column = f"{metric} mean"
    if column not in summary.columns or len(summary) == 0:
        raise ValueError(
            f"summary lacks rows or the column {column!r}; expected summarize_ablation's table"
        )
    key = metric.replace(" ", "_")
    name = max(baselines, key=lambda k: (baselines[k][key], k))
    best = float(baselines[name][key])
    means = summary[column].astype(float)
    above = int((means > best).sum())
    n = len(means)
    share = "Every one" if above == n else ("None" if above == 0 else str(above))
    sentence = (f"{share} of the {n} trained cell{'s' if n > 1 else ''} "
                f"scored above the strongest blind baseline ({name}, {best:.1%} {metric})")  # fmt: skip
    return {"best_blind": name, "best_blind_acc": best, "cells_above": above, "cells": n,
            "sentence": sentence + "."}  # fmt: skip


def score_table(models: dict[str, dict]):
    """One row per model (name -> ``vqa_metrics``): each score as a percentage with its 95 % interval."""
    import pandas as pd

    if not models:
        raise ValueError("models is empty; expected at least one model's metrics")
    labels = {"closed_accuracy": "closed accuracy", "open_exact_match": "open exact match",
              "open_token_recall": "open token recall", "open_f1": "open F1", "open_bleu1": "open BLEU-1"}  # fmt: skip
    rows = []
    for name, m in models.items():
        row = {"model": name}
        for key, label in labels.items():
            lo, hi = m["interval_95"][key]
            row[label] = f"{m[key]:.1%} [{lo:.1%}, {hi:.1%}]"
        rows.append(row | {"questions": m["n_questions"]})
    return pd.DataFrame(rows)


def precision_findings(runs: dict[str, object], tail: float = 0.25) -> dict[str, object]:
    """What the same run trained in FP32, BF16 and FP16 (``pipeline.compare_precisions``) says:
    per precision the mean stage-2 loss over the last ``tail`` of its steps (nats per token) and
    the validation overall accuracy (fraction); FP16's skipped steps and gradient scale; and each
    low precision against FP32 in words; the largest finite float16. Keys are glue names."""
    if "fp32" not in runs:
        raise ValueError(f"runs must include 'fp32' as the reference, got {sorted(runs)}")
    if not 0 < tail <= 1:
        raise ValueError(f"tail must be in (0, 1], got {tail!r}")
    out: dict[str, object] = {}
    for name, r in runs.items():
        losses = [float(v) for v in r.vqa_losses]
        k = max(1, int(round(tail * len(losses))))
        out[f"{name}_tail_loss"] = sum(losses[-k:]) / k
        out[f"{name}_overall"] = float(r.metrics["overall_accuracy"])
        out[f"{name}_steps"] = len(losses)
    for name in runs:
        if name == "fp32":
            continue
        gap = out[f"{name}_tail_loss"] - out["fp32_tail_loss"]
        out[f"{name}_loss_gap"] = abs(gap)
        out[f"{name}_loss_vs_fp32"] = "below" if gap < 0 else ("above" if gap > 0 else "equal to")
        out[f"{name}_vs_fp32"] = compare(out[f"{name}_overall"], out["fp32_overall"])
    if "fp16" in runs:
        r = runs["fp16"]
        out["fp16_largest"] = float(np.finfo(np.float16).max)
        out["fp16_skipped"] = len(r.vqa_skipped_steps)
        out["fp16_scale_start"] = float(r.vqa_scales[0])
        out["fp16_scale_min"] = float(min(r.vqa_scales))
        out["fp16_scale_last"] = float(r.vqa_scales[-1])
    return out


def lesson_by_budget(table, size_name: str, seed: int) -> dict[str, str]:
    """The post's lesson (``ablation_verdict``'s "lesson") at the first and the last budget of an
    ``Ablation.table``, whether it reads the same at every budget, and one sentence saying both
    (keys are glue names)."""
    if "steps" not in table.columns or len(table) == 0:
        raise ValueError("table must be an Ablation.table with a 'steps' column and rows")
    budgets = sorted(set(table["steps"]))
    lessons = {b: ablation_verdict(table[table["steps"] == b].drop(columns="steps"), size_name, seed)["lesson"]
               for b in budgets}  # fmt: skip
    verdicts = {b: text.split(":")[0] for b, text in lessons.items()}
    same = len(set(verdicts.values())) == 1
    changes = ("reads the same at every budget scored" if same else
               "changes with the budget: " + ", ".join(f"{v} after {b} steps" for b, v in verdicts.items()))  # fmt: skip
    final = lessons[budgets[-1]]
    summary = (f"{final}; it {changes}" if same
               else f"{final}; after {budgets[0]} steps it {lessons[budgets[0]]}, so the lesson {changes}")  # fmt: skip
    return {"lesson_first": lessons[budgets[0]], "lesson_final": final, "lesson_changes": changes,
            "lesson_summary": summary}  # fmt: skip


def best_cell(
    rows, final: tuple[str, str, str], metric: str = "overall accuracy"
) -> dict[str, object]:
    """The ablation cell with the highest mean ``metric`` over seeds in ``rows`` (one budget of an
    ``Ablation.table``), and whether it is the ``final`` (encoder, LM, fusion) configuration."""
    _check_table(rows)
    means = rows.groupby(list(FACTORS))[metric].mean()
    best = max(means.index, key=lambda k: (means[k], k))
    return {"best_cell": f"{best[0]} encoder + {best[1]} LM + {best[2]}", "best_cell_acc": float(means[best]),
            "best_is_final": "is" if tuple(best) == tuple(final) else "is not"}  # fmt: skip


def seed_design(seeds: int, fusions: tuple[str, ...], seed_fusions: tuple[str, ...]) -> str:
    """A sentence saying how many pre-training seeds the ablation has and which cells each trains."""
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds!r}")
    if seeds == 1:
        return ("One pre-training seed at this size, so no cell has a seed-to-seed spread; every interval "
                "below is over questions only.")  # fmt: skip
    every = [f for f in fusions if f in seed_fusions]
    others = [f for f in fusions if f not in seed_fusions]
    text = (f"{seeds} pre-training seeds: for each, both encoders and both LMs are pre-trained again from "
            "scratch (new initial weights, general images and text, and batches) and fine-tuned with their "
            "own seed; " + (f"the {' and '.join(every)} cells are trained at every seed" if every
                            else "no fusion is trained at every seed"))  # fmt: skip
    return text + (
        f", the {' and '.join(others)} cells at the first only (to fit the time budget)."
        if others
        else "."
    )


def budget_design(final_steps: int, check_steps: int | None, stopped: tuple[str, ...] = ()) -> str:
    """How long every ablation cell trains, relative to the final model's budget: one clause for
    the page (``check_steps``: the longer budget the cells go on to, or None; ``stopped``: the
    fusions whose cells stop at the final budget instead, ``ExperimentSize.cell_budgets``)."""
    if check_steps is None:
        return (f"the final model's budget of {final_steps} steps, so the last point of each run is a "
                "model at the end of its schedule, as the final model is")  # fmt: skip
    if check_steps <= final_steps:
        raise ValueError(f"check_steps must exceed final_steps {final_steps}, got {check_steps!r}")
    text = (f"beyond the final model's budget of {final_steps} steps, to check whether the verdict read at "
            f"that budget holds at a longer one; the cosine schedule aims at {check_steps} steps, so the "
            f"point at {final_steps} steps is a model still at a raised learning rate, not the end of a "
            f"{final_steps}-step run like the final model")  # fmt: skip
    if stopped:
        text += (f" (the {' and '.join(stopped)} cells, which the lever verdict does not use, stop at "
                 f"{final_steps} steps, at the end of their schedule, to fit the time budget)")  # fmt: skip
    return text


#: Open question types asked only about scans with a finding (``text.make_vqa``).
ABNORMAL_ONLY_TYPES = ("location", "organ", "side", "size")


def question_giveaways(scans: list, items: list, majority: dict) -> dict[str, object]:
    """How the generated questions give answers away, counted on ``items`` (``VQAItem`` over
    ``scans``): the share of location/organ/side/size questions asked about a scan with a finding,
    the share of them whose wording names that finding, the share of presence questions about a
    scan with a finding that name its true finding, and the majority answer's accuracy (``majority``:
    its ``vqa_metrics`` on the same items) on those location/organ/side/size questions (fractions;
    keys are glue names)."""
    from fieldnotes.vlm.text import FINDING_WORDS

    located = [it for it in items if it.question_type in ABNORMAL_ONLY_TYPES]
    presence = [it for it in items if it.question_type == "presence" and scans[it.image].abnormal]
    if not located or not presence:
        raise ValueError(
            "items lack location/organ/side/size or presence questions about abnormal scans"
        )
    named = [it for it in located if FINDING_WORDS[scans[it.image].finding] in it.question]
    true_named = [it for it in presence if FINDING_WORDS[scans[it.image].finding] in it.question]
    return {"give_abnormal_share": sum(scans[it.image].abnormal for it in located) / len(located),
            "give_named_share": len(named) / len(located),
            "give_presence_true": len(true_named) / len(presence),
            "give_majority_acc": _pooled(majority["by_question_type"], ABNORMAL_ONLY_TYPES)}  # fmt: skip


def valid_closed_share(items: list, predictions: list[str]) -> float:
    """The share of closed questions (yes/no) that ``predictions`` answer with "yes" or "no" at all
    (fraction): a model below 50 % accuracy that rarely says either is failing to answer, not
    answering worse than a coin."""
    closed = [p for it, p in zip(items, predictions, strict=True) if it.answer_type == "closed"]
    if not closed:
        raise ValueError("items hold no closed questions")
    return sum(p in ("yes", "no") for p in closed) / len(closed)


def book_results_path():
    """Where the committed book-size metrics live: ``benchmarks/results/vlm_metrics.json`` under the
    repository root (relative to the working folder when the package is installed elsewhere)."""
    from pathlib import Path

    from fieldnotes.book import repo_root

    return (repo_root() or Path(".")) / "benchmarks" / "results" / "vlm_metrics.json"


def results_edition(metrics_path) -> str:
    """Whether the committed book-size results (``benchmarks/results/vlm_metrics.json``) were
    written by this edition's benchmark (they carry the ``levers`` and ``image_dependence``
    blocks): a clause for the page."""
    import json
    from pathlib import Path

    path = Path(metrics_path)
    if not path.is_file():
        return f"no book-size results are committed yet ({path.name} is missing)"
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON metrics file ({err})") from err
    if not isinstance(m, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(m).__name__}")
    if {"levers", "image_dependence"} <= set(m):
        return f"the committed book-size results in {path.name} come from this edition's benchmark"
    return (
        f"the committed {path.name} is still the first edition's (no lever table, no "
        "image-dependence control): the book-size run of this edition is pending"
    )


def pretraining_compute(size) -> dict[str, object]:
    """How much pre-training each general and medical part gets at ``size``
    (``pipeline.ExperimentSize``), in optimizer steps of the same batch size within each pair: the
    medical LM continues the general one, so it gets both; the medical encoder's CLIP steps against
    the general encoder's supervised steps; each medical part's extra share (fraction; negative:
    less). Keys are glue names."""
    general_lm, medical_lm = size.lm_general_steps, size.lm_general_steps + size.lm_medical_steps
    general_enc, medical_enc = size.vision_general_steps, size.clip_steps
    if min(general_lm, general_enc) < 1:
        raise ValueError(
            f"size must pre-train every part for >= 1 step, got LM {general_lm}, encoder {general_enc}"
        )
    return {"lm_general_steps": general_lm, "lm_medical_steps": medical_lm,
            "lm_extra_share": medical_lm / general_lm - 1, "enc_general_steps": general_enc,
            "enc_medical_steps": medical_enc, "enc_extra_share": medical_enc / general_enc - 1}  # fmt: skip
