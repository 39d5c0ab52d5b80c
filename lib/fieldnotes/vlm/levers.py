"""Which part is the larger lever, the encoder or the language model, at each training budget.

From ``pipeline.Ablation.correct`` (1/0 per validation question for every cell, seed and budget):

* every cell is first taken minus its own no-image LM (the same LM trained on the same VQA with
  zero image tokens, same seed and schedule), so the effects measure what each part adds through
  the image, not the LM's question priors;
* the **encoder effect** at a budget is the mean, over the LMs, fusions and seeds, of a cell's
  gain with the medical encoder minus the same cell's with the general one (percentage points);
  the **LM effect** likewise with the LM swapped; their **difference** says which is larger;
* the 95 % interval of each is a percentile bootstrap over questions (the same resampled
  questions for every cell, since every cell answers the same validation questions); the
  pre-training seeds are not resampled (two or three seeds are too few for a bootstrap): each
  seed's effect is reported and whether their signs agree;
* only cells trained at every seed enter (``pipeline.ExperimentSize.seed_fusions``), so every
  seed contributes the same comparison;
* no lever is named at a budget where no cell beats the blind baselines (its own no-image LM and
  the majority answer, interval above zero): there the models do not use the image;
* otherwise the verdict is "the encoder" or "the language model" only when the difference's
  interval excludes zero; else the grid cannot separate them at that budget, and it says so;
* ``cell_intervals`` gives every cell's accuracy with the same kind of interval.
"""

from __future__ import annotations

import numpy as np

from fieldnotes.vlm.seeds import derive_seed

ENCODER, LM = "the encoder", "the language model"
NEITHER = "neither separably (the difference's interval includes zero)"
NO_IMAGE = "no lever at all (no cell beats the blind baselines, so no model uses the image here)"


def _paired_cells(
    correct: dict, fusions: tuple[str, ...] | None
) -> tuple[list[str], list[int], list[int]]:
    """The fusions trained with all four encoder/LM pairs at every seed, the seeds, the budgets."""
    if not correct:
        raise ValueError("correct is empty; expected pipeline.Ablation.correct")
    seeds = sorted({k[3] for k in correct})
    budgets = sorted({k[4] for k in correct})
    pairs = [(e, m) for e in ("general", "medical") for m in ("general", "medical")]
    found = sorted({k[2] for k in correct} if fusions is None else set(fusions))
    usable = [f for f in found
              if all((e, m, f, s, b) in correct for e, m in pairs for s in seeds for b in budgets)]  # fmt: skip
    return usable, seeds, budgets


def lever_table(correct: dict, blind: dict, majority: np.ndarray | None = None,
                fusions: tuple[str, ...] | None = None, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95):  # fmt: skip
    """One row per budget (stage-2 steps): encoder effect, LM effect and their difference (points)
    with ``level`` bootstrap intervals over questions, each effect per pre-training seed and whether
    its sign is the same at every seed, how many cells beat the blind baselines, the larger lever,
    and the cells, seeds and questions used.

    Every cell is first taken **minus its own no-image LM** (``blind[(lm, seed, steps)]``: the same
    LM trained on the same VQA with zero image tokens, the records of ``pipeline.Ablation.blind``),
    so an LM's effect is what it adds *through the image*, not its better question priors. A cell
    beats the blind baselines when the lower end of its interval over its own no-image LM (and over
    ``majority``, the majority answer's records, when given) is above zero; when no cell does at a
    budget, no lever is named there (``NO_IMAGE``). ``fusions`` restricts the cells (None: every
    fusion trained at every seed). Raises ``ValueError`` when no fusion was trained with both
    encoders and both LMs at every seed, or a blind record is missing."""
    import pandas as pd

    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"n_boot must be >= 1 and level in (0, 1), got {n_boot!r}, {level!r}")
    usable, seeds, budgets = _paired_cells(correct, fusions)
    if not usable:
        raise ValueError("no fusion was trained with the general and medical encoder and LM at every "
                         "seed, so the encoder and the LM cannot be compared")  # fmt: skip
    n_q = {len(v) for v in correct.values()} | {len(v) for v in blind.values()}
    if majority is not None:
        n_q.add(len(majority))
    if len(n_q) != 1:
        raise ValueError(f"every cell, blind LM and majority record must answer the same questions, "
                         f"got lengths {sorted(n_q)}")  # fmt: skip
    missing = sorted(
        {(m, s, b) for m in ("general", "medical") for s in seeds for b in budgets} - set(blind)
    )
    if missing:
        raise ValueError(f"blind lacks the no-image LM records {missing[:3]} (LM, seed, steps)")
    q = n_q.pop()
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    rng = np.random.default_rng(derive_seed(seed, "lever bootstrap"))
    rows = []
    for b in budgets:
        idx = rng.integers(0, q, (n_boot, q))
        gain = {(e, m, f, s): correct[(e, m, f, s, b)] - blind[(m, s, b)]
                for e in ("general", "medical") for m in ("general", "medical") for f in usable for s in seeds}  # fmt: skip
        above = 0
        for e, m, f in {k[:3] for k in gain}:
            over = [np.mean([gain[(e, m, f, s)] for s in seeds], axis=0)]
            if majority is not None:
                over.append(np.mean([correct[(e, m, f, s, b)] for s in seeds], axis=0) - majority)
            above += all(np.quantile(d[idx].mean(axis=1), lo_q) > 0 for d in over)
        est, boot, by_seed = {}, {}, {}
        for name, swap in (("encoder", 0), ("LM", 1)):
            per_seed = []  # (seed, question) effect of the medical part, mean over the other choices
            for s in seeds:
                diffs = []
                for f in usable:
                    for other in ("general", "medical"):
                        hi = ("medical", other) if swap == 0 else (other, "medical")
                        lo = ("general", other) if swap == 0 else (other, "general")
                        diffs.append(gain[(*hi, f, s)] - gain[(*lo, f, s)])
                per_seed.append(np.mean(diffs, axis=0))
            per_seed = np.array(per_seed)
            by_seed[name] = per_seed.mean(axis=1) * 100
            est[name] = float(per_seed.mean()) * 100
            boot[name] = (
                per_seed.mean(axis=0)[idx].mean(axis=1) * 100
            )  # seeds fixed, questions resampled
        est["difference"] = est["encoder"] - est["LM"]
        boot["difference"] = boot["encoder"] - boot["LM"]
        by_seed["difference"] = by_seed["encoder"] - by_seed["LM"]
        row = {"steps": b}
        for name in ("encoder", "LM", "difference"):
            lo, hi = np.quantile(boot[name], [lo_q, hi_q])
            signs = set(np.sign(np.round(by_seed[name], 9)))
            row |= {f"{name} effect": est[name], f"{name} lo": float(lo), f"{name} hi": float(hi),
                    f"{name} by seed": ", ".join(f"{v:+.1f}" for v in by_seed[name]),
                    f"{name} signs agree": len(signs) == 1}  # fmt: skip
        lo, hi = row["difference lo"], row["difference hi"]
        if above == 0:
            row["larger lever"] = NO_IMAGE
        else:
            row["larger lever"] = ENCODER if lo > 0 else LM if hi < 0 else NEITHER
        rows.append(row | {"cells above blind": above, "cells": 4 * len(usable),
                           "fusions": ", ".join(usable), "seeds": len(seeds), "questions": q})  # fmt: skip
    return pd.DataFrame(rows)


def cell_intervals(correct: dict, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """Per (encoder, LM, fusion, steps): overall accuracy (fraction) averaged over its seeds, with a
    ``level`` percentile bootstrap interval over questions and, where the cell has two or more
    seeds, over seeds (seeds resampled first), and the number of seeds."""
    import pandas as pd

    if not correct:
        raise ValueError("correct is empty; expected pipeline.Ablation.correct")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"n_boot must be >= 1 and level in (0, 1), got {n_boot!r}, {level!r}")
    cells: dict[tuple, list[np.ndarray]] = {}
    for (e, m, f, _seed, b), v in sorted(correct.items(), key=lambda kv: kv[0]):
        cells.setdefault((e, m, f, b), []).append(v)
    rng = np.random.default_rng(derive_seed(seed, "cell bootstrap"))
    rows = []
    for (e, m, f, b), runs in cells.items():
        acc = np.array(runs)  # (seeds, questions)
        idx = rng.integers(0, acc.shape[1], (n_boot, acc.shape[1]))
        pick = rng.integers(0, len(acc), (n_boot, len(acc)))
        by_seed = acc[:, idx].mean(axis=2)  # (seeds, n_boot)
        boot = by_seed[pick, np.arange(n_boot)[:, None]].mean(axis=1)
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        rows.append({"encoder": e, "language model": m, "fusion": f, "steps": b,
                     "overall accuracy": float(acc.mean()), "lo": float(lo), "hi": float(hi),
                     "seeds": len(acc)})  # fmt: skip
    return pd.DataFrame(rows)


def _effect(row, name: str) -> str:
    return (
        f"{row[f'{name} effect']:+.1f} points [{row[f'{name} lo']:+.1f}, {row[f'{name} hi']:+.1f}]"
    )


def lever_findings(table) -> dict[str, str]:
    """Sentences from ``lever_table`` for the page (keys are glue names): per budget the effects
    with intervals, the verdict at the final budget, whether it changes with the budget, and how
    each effect moved from the first budget to the last."""
    if len(table) == 0:
        raise ValueError("table is empty; expected lever_table's rows")
    rows = [r for _, r in table.sort_values("steps").iterrows()]
    first, last = rows[0], rows[-1]
    per_budget = "; ".join(f"after {r['steps']} steps the encoder {_effect(r, 'encoder')}, the LM "
                           f"{_effect(r, 'LM')}, difference {_effect(r, 'difference')}: {r['larger lever']}"
                           for r in rows)  # fmt: skip
    verdicts = [r["larger lever"] for r in rows]
    if len(set(verdicts)) == 1:
        changes = f"is the same at every budget scored: {verdicts[0]}"
    else:
        changes = "changes with the budget: " + ", ".join(f"{v} after {r['steps']} steps"
                                                          for v, r in zip(verdicts, rows, strict=True))  # fmt: skip
    seeds = int(last["seeds"])
    if seeds > 1:
        agree = "the same" if last["difference signs agree"] else "not the same"
        over = (f"over questions, with the {seeds} pre-training seeds kept apart (too few to resample): "
                f"at the final budget the encoder's effect per seed is {last['encoder by seed']} points, "
                f"the LM's {last['LM by seed']}, and the sign of their difference is {agree} at every seed")  # fmt: skip
    else:
        over = "over questions only (one pre-training seed at this size, so seed-to-seed variation is not in it)"
    n_above = [int(r["cells above blind"]) for r in rows]
    if not any(n_above):
        image = (f"At no budget scored does any of the {int(last['cells'])} cells beat the blind baselines "
                 "(its own LM trained without the image, and the majority answer), so at this size the "
                 "models do not use the image and no lever is named.")  # fmt: skip
    else:
        image = ("Cells that beat the blind baselines (their own no-image LM and the majority answer): "
                 + ", ".join(f"{k} of {int(r['cells'])} after {r['steps']} steps" for k, r in zip(n_above, rows, strict=True))
                 + ".")  # fmt: skip

    def moved(name: str) -> str:
        a, b = first[f"{name} effect"], last[f"{name} effect"]
        if round(a, 1) == round(b, 1):
            return f"stayed at {b:+.1f} points"
        return f"{'grew' if b > a else 'shrank'} from {a:+.1f} to {b:+.1f} points"

    trend = (f"Between {first['steps']} and {last['steps']} steps the encoder's effect {moved('encoder')} "
             f"and the LM's {moved('LM')}.")  # fmt: skip
    return {"lever_per_budget": per_budget + ".", "lever_final": str(last["larger lever"]),
            "lever_changes": changes, "lever_intervals": over, "lever_trend": trend,
            "lever_fusions": str(last["fusions"]), "lever_image_use": image}  # fmt: skip


def agreement(a: str, b: str) -> str:
    """'agrees' or 'disagrees': whether two verdicts of ``lever_table`` name the same lever; when
    either names no lever because no cell used the image, 'cannot be compared (no lever is named)'."""
    if NO_IMAGE in (a, b):
        return "cannot be compared (no lever is named)"
    return "agrees" if a == b else "disagrees"


def check_finding(
    table, final_steps: int, check_steps: int | None, book_check_steps: int | None = None
) -> dict[str, str]:
    """Whether the verdict of ``lever_table`` at the final model's budget (``final_steps``) holds
    at the longer ``check_steps`` the cells were trained on to (keys are glue names):
    ``lever_check`` a sentence with the effects at ``check_steps``, ``lever_check_holds`` "holds",
    "does not hold" or "was not measured" (``check_steps`` None: the cells stopped at the final
    budget; ``book_check_steps``, when given, names the budget the book size checks)."""
    steps = set(table["steps"]) if len(table) else set()
    if final_steps not in steps:
        raise ValueError(
            f"final_steps {final_steps!r} is not a budget of the table, {sorted(steps)}"
        )
    if check_steps is None:
        where = (f" (the book size trains them on to {book_check_steps} steps)"
                 if book_check_steps is not None else "")  # fmt: skip
        return {"lever_check": f"At this size the cells stop at the final budget{where}, so whether the "
                               "verdict holds at a longer budget is not measured here.",
                "lever_check_holds": "was not measured"}  # fmt: skip
    if check_steps not in steps or check_steps <= final_steps:
        raise ValueError(f"check_steps must be a budget of the table above final_steps {final_steps}, "
                         f"got {check_steps!r} (budgets {sorted(steps)})")  # fmt: skip
    final = table[table["steps"] == final_steps].iloc[0]
    check = table[table["steps"] == check_steps].iloc[0]
    holds = "holds" if check["larger lever"] == final["larger lever"] else "does not hold"
    sentence = (f"Trained on to {check_steps} steps, beyond the final model's {final_steps}, the encoder "
                f"{_effect(check, 'encoder')}, the LM {_effect(check, 'LM')}, difference "
                f"{_effect(check, 'difference')}: the larger lever there is {check['larger lever']}, so the "
                f"verdict at the final budget ({final['larger lever']}) {holds} at {check_steps} steps.")  # fmt: skip
    return {"lever_check": sentence, "lever_check_holds": holds}
