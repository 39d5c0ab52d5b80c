"""fieldnotes.shop.figures and .story: labelled figures, and the claims table's verdicts."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from fieldnotes.shop import figures, story  # noqa: E402
from fieldnotes.shop.utterances import CHANNELS  # noqa: E402

ROWS = [{"rate": r, "offered_turns_per_s": 8.0 * r, "latency_ms": {"p50": 50.0 * r, "p99": 90.0 * r},
         "p99_range_ms": [80.0 * r, 110.0 * r]} for r in (1, 2, 4)]


def test_bars_have_one_group_per_channel_and_labelled_axes():
    ax = figures.plot_by_channel({"a": dict.fromkeys(CHANNELS, 0.5), "b": dict.fromkeys(CHANNELS, 0.9)},
                                 ylabel="nDCG@10", title="t", target=0.9)
    assert len(ax.patches) == 2 * len(CHANNELS) and ax.get_ylabel() == "nDCG@10" and ax.get_xlabel()


def test_latency_figure_marks_the_knee_on_a_log_axis():
    ax = figures.plot_latency_vs_rate(ROWS, 1, target_ms=100.0)
    assert ax.get_yscale() == "log" and "ms" in ax.get_ylabel() and "turns per second" in ax.get_xlabel()
    assert any("knee" in t.get_text() for t in ax.get_legend().get_texts())
    assert len(ax.containers) == 1  # the p99 spread over the repeats, as error bars


def metrics(value):
    per = dict.fromkeys(["all", *CHANNELS], value)
    return {"intent_accuracy": {"model": per}, "slot_f1": {"model": per}, "task_success": {"model": per},
            "search_ablation": {"both_views": {"no_diacritics": 0.9}, "accented_only": {"no_diacritics": 0.3}},
            "invariants": {"model": {"x": 0}, "rules": {"x": 0}}}


@pytest.mark.parametrize(("value", "met"), [(0.97, 8), (0.5, 3)])
def test_verdicts_compare_each_measure_with_its_target(value, met):
    kill = {"invariants": {"x": 0}}
    table = story.verdicts(metrics(value), {"latency_ms": {"p99": 80.0}}, [kill], kill, 100.0)
    assert len(table) == 8 and int(table["met"].sum()) == met
    assert not story.verdicts(metrics(0.97), None, [kill], kill, 100.0)["met"].iloc[-1]  # no knee: not met


def test_the_invariant_verdict_counts_the_sweep_runs_too():
    kill, broken = {"invariants": {"x": 0}}, {"invariants": {"x": 1}}
    table = story.verdicts(metrics(0.97), {"latency_ms": {"p99": 80.0}}, [kill, broken], kill, 100.0)
    assert table["value"].iloc[-2] == 1 and not table["met"].iloc[-2]


def test_kill_facts_count_with_the_right_plurals():
    kill = {"in_flight_at_kill": 1, "payments_settling_on_killed_worker": 2, "retries": 1,
            "confirms_committed_unanswered": 1, "reconciled": {"paid": 0, "refunded": 0, "unpaid_before": 2},
            "server_workers": {"before": 3, "after": 3, "started": 1}}
    text = story.kill_facts(kill)
    assert "1 request in flight" in text and "2 payments under way" in text and "(1 resend)" in text
    assert "1 confirmation that" in text and "was answered" in text and text.endswith(".")
    assert "2 confirmed orders were unpaid" in text and "started 1 new worker" in text
    none_started = story.kill_facts(kill | {"server_workers": {"before": 3, "after": 2, "started": 0}})
    assert "no new server process had started" in none_started and "new worker" not in none_started


def test_the_nodelay_verdict_reads_which_side_must_set_it():
    ms = {(False, False): 48.0, (False, True): 52.0, (True, False): 36.0, (True, True): 4.0}
    assert story.nodelay_verdict(ms).startswith("Only with both sides")
    assert "did not show" in story.nodelay_verdict(dict.fromkeys(ms, 4.0))
    assert story.nodelay_verdict(ms | {(True, False): 5.0}).endswith("with neither side and with only the client setting it.")
    with pytest.raises(ValueError, match="health_ms"):
        story.nodelay_verdict({(True, True): 1.0})
