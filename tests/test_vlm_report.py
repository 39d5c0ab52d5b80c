"""The benchmark's written results come from its metrics: the README's verdict paragraph and
vlm_ablation.md are what the committed vlm_metrics.json renders to, the verdict follows the lever
table budget by budget, and a missing or NaN field is refused by name instead of printed as "nan"."""

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest

from fieldnotes.book import repo_root
from fieldnotes.vlm import report
from fieldnotes.vlm.levers import ENCODER, LM, NEITHER

ROOT = Path(repo_root())
METRICS = ROOT / "benchmarks" / "results" / "vlm_metrics.json"


@pytest.fixture(scope="module")
def committed():
    return json.loads(METRICS.read_text())


def _bench():
    spec = importlib.util.spec_from_file_location(
        "vlm_bench", ROOT / "benchmarks" / "vlm_ablation.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_and_summary_say_what_the_committed_results_say(committed):
    assert report.readme_block(committed) in (ROOT / "README.md").read_text()
    lines = _bench().summary_lines(committed, "book")
    assert "\n".join(lines) == (ROOT / "benchmarks" / "results" / "vlm_ablation.md").read_text()
    assert not re.search(r"\bnan\b", "\n".join(lines), re.I)  # one-seed sds show as "–"


def _lever(steps, verdict, diff, lo, hi, agree=True):
    return {"steps": steps, "larger lever": verdict, "difference effect": diff, "difference lo": lo,
            "difference hi": hi, "difference by seed": f"{diff:+.1f}, {diff:+.1f}",
            "difference signs agree": agree, "fusions": "qformer", "seeds": 2}  # fmt: skip


def test_the_verdict_follows_the_lever_table_at_every_budget(committed):
    m = copy.deepcopy(committed)
    m["size"]["final_vqa_steps"] = 500
    m["levers"] = [_lever(800, ENCODER, 3.0, 1.1, 5.0), _lever(150, LM, -6.2, -8.4, -3.7, False),
                   _lever(500, NEITHER, 1.2, -0.7, 3.0)]  # fmt: skip
    text = report.budget_verdict(m)
    assert text.startswith(
        "Which part is the larger lever depends on the budget: the language model after 150"
    )
    assert text.index("150 steps") < text.index("500 steps") < text.index("800 steps")
    assert "after 500 steps (the final model's budget)" in text
    assert (
        "the encoder after 800 steps (the check budget), encoder minus LM +3.0 points [+1.1, +5.0]"
        in text
    )
    assert "sign not the same at every seed" in text  # the 150-step row's seeds disagree
    m["levers"] = [_lever(b, NEITHER, 0.5, -1.0, 2.0) for b in (150, 500, 800)]
    assert report.budget_verdict(m).startswith("Which part is the larger lever does not change")


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("size", "final_vqa_steps"), float("nan"), "size.final_vqa_steps is nan"),
        (("size", "final_vqa_steps"), None, "size.final_vqa_steps is None"),
        (("size", "final_vqa_steps"), 400, "400 is not a budget the ablation scored"),
        (("wall_seconds",), float("inf"), "wall_seconds is inf"),
        (("final", "closed_accuracy"), float("nan"), "final.closed_accuracy"),
        (("levers", 0, "difference lo"), float("nan"), "difference lo = nan"),
    ],
)
def test_a_missing_or_nan_result_is_refused_by_name(committed, path, value, error):
    m = copy.deepcopy(committed)
    target = m
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=error) as err:
        report.verdict_paragraph(m, "vlm_metrics.json")
    assert "vlm_metrics.json" in str(err.value)
    del m["levers"]
    with pytest.raises(ValueError, match="lacks levers"):
        report.check_results(m, "x.json")


def test_the_readme_block_is_replaced_between_its_markers_only(committed):
    text = f"# top\n\n{report.README_BEGIN}\nold typed verdict\n{report.README_END}\n\nrest\n"
    out = report.replace_readme_block(text, committed)
    assert out.startswith("# top\n\n") and out.endswith("\n\nrest\n") and "old typed" not in out
    assert report.replace_readme_block(out, committed) == out
    with pytest.raises(ValueError, match="BEGIN/END markers"):
        report.replace_readme_block("# no markers\n", committed)


def test_the_package_docstring_names_every_module():
    import fieldnotes.vlm as vlm

    modules = sorted(p.stem for p in Path(vlm.__file__).parent.glob("*.py") if p.stem != "__init__")
    unnamed = [m for m in modules if f"``{m}``" not in vlm.__doc__]
    assert modules and not unnamed, f"fieldnotes.vlm's docstring does not name {unnamed}"
