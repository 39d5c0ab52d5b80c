"""fieldnotes.shop.figures and .story: labelled figures, and the claims table's verdicts."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from fieldnotes.shop import figures, story  # noqa: E402
from fieldnotes.shop.utterances import CHANNELS  # noqa: E402

ROWS = [{"rate": r, "offered_turns_per_s": 8.0 * r, "latency_ms": {"p50": 50.0 * r, "p99": 90.0 * r}}
        for r in (1, 2, 4)]


def test_bars_have_one_group_per_channel_and_labelled_axes():
    ax = figures.plot_by_channel({"a": dict.fromkeys(CHANNELS, 0.5), "b": dict.fromkeys(CHANNELS, 0.9)},
                                 ylabel="nDCG@10", title="t", target=0.9)
    assert len(ax.patches) == 2 * len(CHANNELS) and ax.get_ylabel() == "nDCG@10" and ax.get_xlabel()


def test_latency_figure_marks_the_knee_on_a_log_axis():
    ax = figures.plot_latency_vs_rate(ROWS, 1, target_ms=100.0)
    assert ax.get_yscale() == "log" and "ms" in ax.get_ylabel() and "turns per second" in ax.get_xlabel()
    assert any("knee" in t.get_text() for t in ax.get_legend().get_texts())


def metrics(value):
    per = dict.fromkeys(["all", *CHANNELS], value)
    return {"intent_accuracy": {"model": per}, "slot_f1": {"model": per}, "task_success": {"model": per},
            "search_ablation": {"both_views": {"no_diacritics": 0.9}, "accented_only": {"no_diacritics": 0.3}},
            "invariants": {"model": {"x": 0}, "rules": {"x": 0}}}


@pytest.mark.parametrize(("value", "met"), [(0.97, 8), (0.5, 3)])
def test_verdicts_compare_each_measure_with_its_target(value, met):
    kill = {"invariants": {"x": 0}}
    table = story.verdicts(metrics(value), {"latency_ms": {"p99": 80.0}}, kill, 100.0)
    assert len(table) == 8 and int(table["met"].sum()) == met
    assert not story.verdicts(metrics(0.97), None, kill, 100.0)["met"].iloc[-1]  # no knee: not met
