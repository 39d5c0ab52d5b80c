"""fieldnotes.memory.figures: each figure draws what it says (checked on the artists)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fieldnotes.memory import GB, activation_bytes, zero_table  # noqa: E402
from fieldnotes.memory.figures import (  # noqa: E402
    plot_activations,
    plot_rank_states,
    plot_timelines,
    plot_zero_stages,
)
from fieldnotes.memory.timeline import CATEGORIES  # noqa: E402

PSI = 7_069_016_064


def test_zero_stages_has_one_bar_per_stage_and_gpu_count():
    table = zero_table(PSI, gpus=(1, 4, 8))
    fig = plot_zero_stages(table, 40.0, params=PSI, model="BLOOMZ-7b1")
    ax = fig.axes[0]
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(sorted(table["total_GB"]))
    assert ax.get_yscale() == "log" and "GB" in ax.get_ylabel() and "GPUs" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "4", "8"]
    assert any(line.get_ydata()[0] == 40.0 for line in ax.lines)  # the GPU's capacity
    plt.close(fig)


def _measured():
    rows = []
    for engine, held in [("deepspeed-0", 16), ("deepspeed-3", 8)]:
        for rank in (0, 1):
            for part in ("parameters", "gradients", "master", "moments"):
                rows.append(
                    {
                        "engine": engine,
                        "rank": rank,
                        "part": part,
                        "params": 10**6,
                        "measured_bytes": held * 10**6 // 4 + rank,
                        "formula_bytes": held * 10**6 // 4,
                    }
                )
    return pd.DataFrame(rows)


def test_rank_states_stack_the_measured_parts_and_mark_the_formula():
    fig = plot_rank_states(_measured(), rank=1)
    ax = fig.axes[0]
    assert len(ax.patches) == 4 * 2  # four parts, two engines
    tops = {}
    for p in ax.patches:
        x = round(p.get_x(), 6)
        tops[x] = max(tops.get(x, 0), p.get_y() + p.get_height())
    assert sorted(tops.values()) == pytest.approx([8 + 4e-6, 16 + 4e-6])  # MB, rank 1's extra bytes
    assert sorted(ax.collections[0].get_offsets()[:, 1]) == pytest.approx([8.0, 16.0])
    assert "MB" in ax.get_ylabel() and "rank 1" in ax.get_ylabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="rank"):
        plot_rank_states(_measured(), rank=5)


def test_activations_plot_three_modes_and_two_lines():
    seqs = [256, 1024, 4096]
    fig = plot_activations(seqs, hidden=4096, heads=32, layers=30, states_gb=14.1, gpu_gb=40.0)
    ax = fig.axes[0]
    curves = [line for line in ax.lines if len(line.get_xdata()) == len(seqs)]
    assert len(curves) == 3
    none = [activation_bytes(s, 1, 4096, 32, 30) / GB for s in seqs]
    assert list(curves[0].get_ydata()) == pytest.approx(none)
    flat = sorted(line.get_ydata()[0] for line in ax.lines if line not in curves)
    assert flat == pytest.approx([14.1, 40.0])
    assert "tokens" in ax.get_xlabel() and "GB" in ax.get_ylabel()
    plt.close(fig)


def test_activations_plot_draws_a_measured_model():
    seqs = [256, 1024]
    fig = plot_activations(
        seqs,
        hidden=64,
        heads=4,
        layers=2,
        states_gb=1.0,
        gpu_gb=40.0,
        measured=("measured BLOOM", lambda s: 3 * s * GB),
    )
    line = [ln for ln in fig.axes[0].lines if ln.get_label() == "measured BLOOM"][0]
    assert list(line.get_ydata()) == pytest.approx([3 * s for s in seqs])
    plt.close(fig)


def _timeline():
    rows = []
    for engine, scale in [("deepspeed-0", 1), ("deepspeed-3", 2), ("torch-fsdp", 3)]:
        for k, phase in enumerate(["before", "forward", "backward", "forward", "optimizer"]):
            live = {c: 0 for c in CATEGORIES}
            live["parameters"] = 10**6
            live["activations"] = scale * k * 10**6
            rows.append(
                {
                    "engine": engine,
                    "rank": 0,
                    "seconds": k / 1000,
                    "phase": phase,
                    **live,
                    "total": sum(live.values()),
                }
            )
    return pd.DataFrame(rows)


def test_timelines_one_panel_per_engine_with_phases_and_peak():
    fig = plot_timelines(_timeline(), rank=0)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["deepspeed-0", "deepspeed-3", "torch-fsdp"]
    for scale, ax in enumerate(panels, start=1):
        assert len(ax.collections) == len(CATEGORIES)  # one stacked band per category
        peak = [ln for ln in ax.lines if ln.get_label() == "peak"][0]
        assert peak.get_ydata()[0] == pytest.approx(1 + 4 * scale)  # MB at the last row
        phase_lines = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
        assert [ln.get_xdata()[0] for ln in phase_lines] == pytest.approx([1, 2, 3, 4])  # ms
        assert "MB" in ax.get_ylabel() and "ms" in ax.get_xlabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="rank"):
        plot_timelines(_timeline(), rank=1)


def test_precision_plot_draws_each_mode_and_the_scale():
    from fieldnotes.memory.figures import plot_precision

    rows = []
    for mode in ("fp32", "bf16", "fp16", "fp16-scaled"):
        for step in range(4):
            scaled = mode == "fp16-scaled"
            rows.append({"mode": mode, "step": step, "loss": 5.0 - step,
                         "scale": 2.0 ** (16 - (step == 3)) if scaled else 1.0,
                         "skipped": scaled and step == 2, "underflow": 0.0})
    fig = plot_precision(pd.DataFrame(rows))
    left, right = fig.axes
    assert [ln.get_label() for ln in left.lines] == ["fp32", "bf16", "fp16", "fp16-scaled"]
    assert list(left.lines[0].get_ydata()) == [5.0, 4.0, 3.0, 2.0]
    scale = [ln for ln in right.lines if ln.get_label() == "loss scale"][0]
    assert list(scale.get_ydata()) == [2.0**16] * 3 + [2.0**15]
    skipped = [ln for ln in right.lines if ln.get_label() == "skipped step"][0]
    assert list(skipped.get_xdata()) == [2]
    assert right.get_yscale() == "log" and "nats" in left.get_ylabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="empty"):
        plot_precision(pd.DataFrame(rows).iloc[:0])
