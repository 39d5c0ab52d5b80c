"""The chapter's figures draw what they say: one panel per architecture, labelled ablation bars."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fieldnotes.vlm.diagrams import draw_architectures  # noqa: E402
from fieldnotes.vlm.figures import plot_ablation, plot_curves  # noqa: E402


def test_architectures_one_panel_each_with_its_title():
    fig = draw_architectures()
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 3
    assert titles[0].startswith("Flamingo") and titles[1].startswith("Q-Former")
    assert titles[2].startswith("LLaVA")
    assert len(draw_architectures(("linear",)).axes) == 1
    with pytest.raises(ValueError, match="kind"):
        draw_architectures(("perceiver",))
    with pytest.raises(ValueError, match="empty"):
        draw_architectures(())
    plt.close("all")


def test_ablation_bars_and_curves_have_labelled_axes():
    summary = pd.DataFrame({"encoder": ["general", "medical"], "language model": ["medical"] * 2,
                            "fusion": ["qformer"] * 2, "closed accuracy mean": [0.5, 0.7],
                            "closed accuracy sd": [float("nan")] * 2, "seeds": [1, 1]})  # fmt: skip
    blind = {"majority answer per question": {"closed_accuracy": 0.4},
             "medical LM, question only (no image)": {"closed_accuracy": 0.55}}  # fmt: skip
    fig = plot_ablation(summary, blind)
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([50.0, 70.0])
    assert ax.get_ylabel() == "closed accuracy (%)"
    lines = {
        ln.get_label(): ln.get_ydata()[0]
        for ln in ax.get_lines()
        if ln.get_label().startswith("blind")
    }
    assert lines == pytest.approx({"blind: majority answer per question": 40.0,
                                   "blind: medical LM, question only (no image)": 55.0})  # fmt: skip
    assert (
        "validation split" in ax.get_title()
        and "one pre-training seed, no error bars" in ax.get_title()
    )
    two = plot_ablation(summary.assign(seeds=2, **{"closed accuracy sd": 0.01}), blind).axes[0]
    assert "mean ± sd over pre-training seeds" in two.get_title()
    ax = plot_curves({"a": [3.0, 2.0, 1.0] * 10}, "t", 5).axes[0]
    assert ax.get_xlabel() == "optimizer step" and "nats" in ax.get_ylabel()
    plt.close("all")


def test_precision_curves_one_line_per_precision_and_skipped_steps_marked():
    from fieldnotes.vlm.figures import plot_precision_curves

    losses = {"fp32": [2.0] * 20, "bf16": [2.1] * 20, "fp16": [9.0, 8.0] + [2.0] * 18}
    ax = plot_precision_curves(losses, {"fp16": [0, 1]}, smooth=1).axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert labels == ["fp32", "bf16", "fp16", "fp16: 2 skipped (overflow)"]
    marks = ax.get_lines()[3]
    assert list(marks.get_xdata()) == [0, 1] and list(marks.get_ydata()) == [9.0, 8.0]
    assert "nats" in ax.get_ylabel() and ax.get_xlabel().startswith("optimizer step")
    with pytest.raises(ValueError, match="losses"):
        plot_precision_curves({}, {})
    plt.close("all")


def test_budget_curves_one_line_per_cell_with_blind_references():
    from fieldnotes.vlm.figures import plot_budget_curves

    rows = [{"encoder": e, "language model": "medical", "fusion": "qformer", "steps": b,
             "overall accuracy mean": 0.5 + 0.001 * b + 0.1 * (e == "medical"), "overall accuracy sd": 0.01}
            for e in ("general", "medical") for b in (30, 60, 100)]  # fmt: skip
    ax = plot_budget_curves(
        pd.DataFrame(rows), {"majority answer per question": {"overall_accuracy": 0.45}}
    ).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["blind: majority answer per question", "general enc + medical LM, qformer",
                              "medical enc + medical LM, qformer"]  # fmt: skip
    assert "steps" in ax.get_xlabel() and "(%)" in ax.get_ylabel()
    blind = [ln for ln in ax.get_lines() if ln.get_label().startswith("blind")]
    assert blind[0].get_ydata()[0] == pytest.approx(45.0)
    same = pd.DataFrame(rows).assign(**{"overall accuracy mean": 0.5})  # both cells answer alike
    labels = [t.get_text() for t in plot_budget_curves(same, {}).axes[0].get_legend().get_texts()]
    assert labels == ["general enc + medical LM, qformer",
                      "medical enc + medical LM, qformer (identical to general enc + medical LM, qformer, hidden under it)"]  # fmt: skip
    with pytest.raises(ValueError, match="empty"):
        plot_budget_curves(pd.DataFrame(rows).iloc[:0], {})
    plt.close("all")


def test_data_scaling_figure_log_pairs_and_the_noisy_point_apart():
    from fieldnotes.vlm.figures import plot_data_scaling

    df = pd.DataFrame({"pairs": [50, 100, 200, 200], "caption noise": [0, 0, 0, 0.5],
                       "overall accuracy": [0.5, 0.6, 0.7, 0.55], "overall lo": [0.45, 0.55, 0.65, 0.5],
                       "overall hi": [0.55, 0.65, 0.75, 0.6]})  # fmt: skip
    ax = plot_data_scaling(df, {"majority answer per question": {"overall_accuracy": 0.4}}).axes[0]
    assert ax.get_xscale() == "log" and "pairs" in ax.get_xlabel() and "(%)" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "clean captions" in labels and "50% of captions swapped" in labels
    plt.close("all")
