"""Which part is the larger lever, the encoder or the language model, at each training budget.

From ``pipeline.Ablation.correct`` (1/0 per validation question for every cell, seed and budget):

* the **encoder effect** at a budget is the mean, over the LMs, fusions and seeds, of a cell's
  accuracy with the medical encoder minus the same cell's with the general one (percentage
  points); the **LM effect** likewise with the LM swapped; their **difference** says which is
  larger;
* the 95 % interval of each is a percentile bootstrap over questions (the same resampled
  questions for every cell, since every cell answers the same validation questions) and, when
  there are two or more pre-training seeds, over seeds as well (seeds resampled first);
* only cells trained at every seed enter (``pipeline.ExperimentSize.seed_fusions``), so every
  seed contributes the same comparison;
* the verdict is "the encoder" or "the language model" only when the difference's interval
  excludes zero; otherwise the grid cannot separate them at that budget, and it says so;
* ``cell_intervals`` gives every cell's accuracy with the same kind of interval.
"""

from __future__ import annotations

import numpy as np

from fieldnotes.vlm.seeds import derive_seed

ENCODER, LM = "the encoder", "the language model"
NEITHER = "neither separably (the difference's interval includes zero)"


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


def lever_table(correct: dict, fusions: tuple[str, ...] | None = None, n_boot: int = 1000,
                seed: int = 0, level: float = 0.95):  # fmt: skip
    """One row per budget (stage-2 steps): encoder effect, LM effect and their difference (points)
    with ``level`` bootstrap intervals, the larger lever, and the cells, seeds and questions used.
    ``fusions`` restricts the cells (None: every fusion trained at every seed). Raises
    ``ValueError`` when no fusion was trained with both encoders and both LMs at every seed."""
    import pandas as pd

    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"n_boot must be >= 1 and level in (0, 1), got {n_boot!r}, {level!r}")
    usable, seeds, budgets = _paired_cells(correct, fusions)
    if not usable:
        raise ValueError("no fusion was trained with the general and medical encoder and LM at every "
                         "seed, so the encoder and the LM cannot be compared")  # fmt: skip
    n_q = {len(v) for v in correct.values()}
    if len(n_q) != 1:
        raise ValueError(f"every cell must answer the same questions, got lengths {sorted(n_q)}")
    q = n_q.pop()
    rng = np.random.default_rng(derive_seed(seed, "lever bootstrap"))
    rows = []
    for b in budgets:
        idx = rng.integers(0, q, (n_boot, q))
        pick = rng.integers(0, len(seeds), (n_boot, len(seeds)))
        est, boot = {}, {}
        for name, swap in (("encoder", 0), ("LM", 1)):
            per_seed = []  # (seed, question) effect of the medical part, mean over the other choices
            for s in seeds:
                diffs = []
                for f in usable:
                    for other in ("general", "medical"):
                        hi = ("medical", other) if swap == 0 else (other, "medical")
                        lo = ("general", other) if swap == 0 else (other, "general")
                        diffs.append(correct[(*hi, f, s, b)] - correct[(*lo, f, s, b)])
                per_seed.append(np.mean(diffs, axis=0))
            per_seed = np.array(per_seed)
            est[name] = float(per_seed.mean()) * 100
            by_seed = per_seed[:, idx].mean(axis=2)  # (seeds, n_boot)
            boot[name] = by_seed[pick, np.arange(n_boot)[:, None]].mean(axis=1) * 100
        est["difference"] = est["encoder"] - est["LM"]
        boot["difference"] = boot["encoder"] - boot["LM"]
        row = {"steps": b}
        for name in ("encoder", "LM", "difference"):
            lo, hi = np.quantile(boot[name], [(1 - level) / 2, (1 + level) / 2])
            row |= {f"{name} effect": est[name], f"{name} lo": float(lo), f"{name} hi": float(hi)}
        lo, hi = row["difference lo"], row["difference hi"]
        row["larger lever"] = ENCODER if lo > 0 else LM if hi < 0 else NEITHER
        rows.append(row | {"fusions": ", ".join(usable), "seeds": len(seeds), "questions": q})
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
    over = (f"over questions and over {seeds} pre-training seeds" if seeds > 1
            else "over questions only (one pre-training seed at this size, so seed-to-seed variation is not in it)")  # fmt: skip

    def moved(name: str) -> str:
        a, b = first[f"{name} effect"], last[f"{name} effect"]
        if round(a, 1) == round(b, 1):
            return f"stayed at {b:+.1f} points"
        return f"{'grew' if b > a else 'shrank'} from {a:+.1f} to {b:+.1f} points"

    trend = (f"Between {first['steps']} and {last['steps']} steps the encoder's effect {moved('encoder')} "
             f"and the LM's {moved('LM')}.")  # fmt: skip
    return {"lever_per_budget": per_budget + ".", "lever_final": str(last["larger lever"]),
            "lever_changes": changes, "lever_intervals": over, "lever_trend": trend,
            "lever_fusions": str(last["fusions"])}  # fmt: skip


def agreement(a: str, b: str) -> str:
    """'agrees' or 'disagrees': whether two verdicts of ``lever_table`` name the same lever."""
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
