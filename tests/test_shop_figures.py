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
    assert sorted({t.get_text() for t in ax.texts}) == ["0.50", "0.90"]  # every bar carries its value
    legend = ax.get_legend().get_window_extent(ax.figure.canvas.get_renderer())
    assert legend.x0 >= ax.get_window_extent().x1  # the legend sits outside the bars


def test_latency_figure_marks_the_knee_on_a_log_axis():
    ax = figures.plot_latency_vs_rate(ROWS, 1, target_ms=100.0)
    assert ax.get_yscale() == "log" and "ms" in ax.get_ylabel() and "turns per second" in ax.get_xlabel()
    assert any("knee" in t.get_text() for t in ax.get_legend().get_texts())
    assert len(ax.containers) == 1  # the p99 spread over the repeats, as error bars


def metrics(value):
    per = dict.fromkeys(["all", *CHANNELS], value)
    return {"intent_accuracy": {"model": per}, "slot_f1": {"model": per}, "task_success": {"model": per},
            "search_ablation": {"both_views": {"no_diacritics": 0.9}, "accented_only": {"no_diacritics": 0.3}},
            "search_views": {"chosen": "both_views"}, "invariants": {"model": {"x": 0}, "rules": {"x": 0}}}


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
    timed = story.kill_facts(kill | {"server_workers": {"before": 3, "after": 3, "started": 1, "replaced_after_s": 0.64}})
    assert "started 1 new worker 0.6 s after the kill (3 server processes" in timed
    none_started = story.kill_facts(kill | {"server_workers": {"before": 3, "after": 2, "started": 0,
                                                               "replaced_after_s": None, "waited_up_to_s": 20.0}})
    assert "no new server process had started" in none_started and "new worker" not in none_started
    assert none_started.endswith("(2 of 3 left, after waiting 20 s).")


def test_the_nodelay_verdict_reads_which_side_must_set_it():
    ms = {(False, False): 48.0, (False, True): 52.0, (True, False): 36.0, (True, True): 4.0}
    assert story.nodelay_verdict(ms).startswith("Only with both sides")
    assert "did not show" in story.nodelay_verdict(dict.fromkeys(ms, 4.0))
    assert story.nodelay_verdict(ms | {(True, False): 5.0}).endswith("with neither side and with only the client setting it.")
    with pytest.raises(ValueError, match="health_ms"):
        story.nodelay_verdict({(True, True): 1.0})


def test_the_claims_summary_names_each_missed_target_and_follows_the_table():
    kill = {"invariants": {"x": 0}}
    low = metrics(0.5)
    low["intent_accuracy"]["model"] = dict.fromkeys(["all", *CHANNELS], 0.97)
    text = story.claims_summary(story.verdicts(low, {"latency_ms": {"p99": 80.0}}, [kill], kill, 100.0))
    assert '"scalable" meets all its targets' in text and '"place orders, purchase" misses 1 of 1' in text
    assert '"find products" misses 2 of 5' in text and "intent accuracy" not in text and text.endswith(".")
    assert story.relation(0.8, 0.9) == "below" and story.relation(0.9, 0.8) == "above"
    assert story.relation(0.9, 0.9) == "level with"


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_goals():
    from fieldnotes.shop.evaluate import bootstrap_interval
    few = bootstrap_interval([1.0, 0.0] * 5, seed=0)
    many = bootstrap_interval([1.0, 0.0] * 500, seed=0)
    assert few[0] < 0.5 < few[1] and many[0] < 0.5 < many[1] and many[1] - many[0] < few[1] - few[0]
    assert bootstrap_interval([1.0] * 4, seed=0) == [1.0, 1.0]
    with pytest.raises(ValueError, match="values"):
        bootstrap_interval([], seed=0)


def test_success_figures_give_intervals_and_the_model_against_the_rules():
    m = {"goal_success": {"model": [1.0, 0.5, 1.0, 0.0], "rules": [1.0, 1.0, 1.0, 0.5]},
         "task_success": {"model": {"all": 0.625}, "rules": {"all": 0.875}}, "channels": list(CHANNELS),
         "pass_hat_k": {"model": {"2": 0.5}}, "turns_per_dialogue": {"model": 9.0},
         "faults": {"model": {"assistant": 2, "simulator": 1}}}
    fig = story.success_figures(m, seed=0, runs=2)
    assert fig["model_vs_rules"] == "below" and fig["goals_per_channel"] == 1 and fig["goals"] == 4
    assert fig["task_success_low"] <= 0.625 <= fig["task_success_high"] and fig["gap_low"] <= -0.25 <= fig["gap_high"]
    assert fig["gap_high"] <= 0.0 and fig["gap_verdict"].startswith("the interval holds zero")  # a draw of only ties
    worse = story.success_figures(m | {"goal_success": {"model": [0.0] * 4, "rules": [1.0] * 4}}, seed=0, runs=2)
    assert worse["gap_verdict"] == "the interval excludes zero" and worse["gap_high"] == -1.0


def test_the_knee_comparison_and_the_latency_gap_follow_the_numbers():
    runs = [{"rate": 1.0}, {"rate": 2.0}]
    bench = {"sqlite": {"knee": {"rate": 2.0}, "runs": runs}, "postgresql": {"knee": None, "runs": runs}}
    assert "moves down with PostgreSQL" in story.knee_comparison(bench)
    assert "does not move" in story.knee_comparison(bench | {"postgresql": bench["sqlite"]})
    with pytest.raises(ValueError, match="postgresql"):
        story.knee_comparison({"sqlite": bench["sqlite"]})
    assert story.latency_gap(134.6, 129.3).startswith("Here the two are within 10%")
    assert "40 ms higher" in story.latency_gap(170.0, 130.0)
