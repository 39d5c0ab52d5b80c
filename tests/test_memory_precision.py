"""fieldnotes.memory.precision: fp32, bf16 and fp16 (with and without loss scaling) on the CPU."""

from __future__ import annotations

import pytest
import torch

from fieldnotes.memory.precision import (
    MODES,
    _underflow,
    counting_batches,
    format_ranges,
    precision_experiment,
    precision_run,
)
from fieldnotes.memory.runs import RunSpec

SPEC = RunSpec(hidden=64, layers=2, heads=2, vocab=500, seq_len=32, micro_batch=4)


def test_format_ranges_are_the_ieee_and_bfloat16_limits():
    r = format_ranges()
    assert r.loc["float16", "max"] == 65504.0
    assert r.loc["float16", "smallest normal"] == pytest.approx(6.1035e-5, rel=1e-4)
    assert r.loc["float16", "smallest subnormal"] == pytest.approx(5.96e-8, rel=1e-3)
    assert r.loc["bfloat16", "max"] == pytest.approx(3.39e38, rel=1e-3)
    assert r.loc["bfloat16", "smallest normal"] == r.loc["float32", "smallest normal"]


def test_underflow_counts_only_elements_the_reference_has():
    ref = [torch.tensor([1.0, 2.0, 0.0, 3.0])]
    assert _underflow([torch.tensor([1.0, 0.0, 0.0, 0.0])], ref) == pytest.approx(2 / 3)
    assert _underflow([torch.zeros(4)], [torch.zeros(4)]) == 0.0


def test_counting_batches_are_learnable_and_in_range():
    (x,) = counting_batches(SPEC, 1)
    assert x.shape == (4, 32) and int(x.min()) >= 0 and int(x.max()) < 500
    assert ((x[:, 1:] - x[:, :-1]) % 500 == 3).all()


@pytest.fixture(scope="module")
def table():
    return precision_experiment(SPEC, steps=25)


def test_every_mode_trains_and_fp16_loses_gradients_that_scaling_keeps(table):
    assert list(dict.fromkeys(table["mode"])) == list(MODES)
    g = table.groupby("mode")
    first, last = g.loss.first(), g.loss.last()
    assert (last < first - 0.5).all()  # each mode learns the counting task
    under = g.underflow.mean()
    assert under["fp32"] == 0.0
    # fp16's 6e-8 floor zeroes gradients that bf16's 9e-41 keeps; scaling the loss restores them
    assert under["fp16"] > 10 * under["bf16"] and under["fp16"] > 10 * under["fp16-scaled"]
    scaled = table[table["mode"] == "fp16-scaled"]
    assert scaled.scale.iloc[0] == 2.0**16  # GradScaler's documented initial scale
    assert (table[table["mode"] != "fp16-scaled"].scale == 1.0).all()
    # a skipped step is one after which the scale fell
    assert (scaled.skipped == (scaled.scale.shift(-1) < scaled.scale).fillna(False)).iloc[:-1].all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        precision_run(SPEC, "fp8", steps=1)
    with pytest.raises(ValueError, match="steps"):
        precision_run(SPEC, "fp32", steps=0)
    with pytest.raises(ValueError, match="modes"):
        precision_experiment(SPEC, steps=1, modes=[])


def test_a_run_longer_than_the_growth_interval_shows_the_scaler_at_work():
    """At the CI size (12 steps) a growth interval of 2 lets the scale grow and overshoot."""
    t = precision_experiment(SPEC, steps=12, modes=["fp16-scaled"], growth_interval=2)
    assert t.scale.max() > 2.0**16  # it grew after 2 clean steps
    assert t.skipped.any()  # and a step overflowed, was skipped and halved the scale
    with pytest.raises(ValueError, match="growth_interval"):
        precision_experiment(SPEC, steps=1, growth_interval=0)
