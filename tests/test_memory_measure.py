"""fieldnotes.memory.measure: a real sharded run on CPU ranks, formula vs measured."""

from __future__ import annotations

import pytest

from fieldnotes.memory import RunSpec, count_parameters, measure_zero, summary_table
from fieldnotes.memory.engines import ENGINE_MODEL, ENGINES
from fieldnotes.memory.held import storage_bytes
from fieldnotes.memory.runs import small_bloom_config
from fieldnotes.memory.timeline import CATEGORIES

# odd sizes, so that padding shows
SPEC = RunSpec(hidden=62, layers=2, heads=2, vocab=1001, seq_len=8, micro_batch=2, steps=1)


@pytest.fixture(scope="module")
def measurement():
    return measure_zero(SPEC, world_size=2, fresh_processes=False, progress=False, timeout_s=600)


@pytest.fixture(scope="module")
def table(measurement):
    return measurement.states


def _get(table, engine, part, rank=0):
    sel = table[(table.engine == engine) & (table.part == part) & (table["rank"] == rank)]
    assert len(sel) == 1
    return sel.iloc[0]


@pytest.mark.slow
def test_every_measured_byte_is_the_formula_or_a_named_remainder(table):
    psi = count_parameters(small_bloom_config(SPEC))
    assert (table.params == psi).all()
    assert len(table) == len(ENGINES) * 2 * 4
    assert not table.fresh_processes.any()  # the run says how it was made (peak RSS is shared)
    # SPEC trains one step before the traced one: it is timed, set-up included, and says so
    assert (table.timed_steps == 1).all() and table.first_step_timed.all()
    assert (table.step_seconds_min <= table.step_seconds).all()
    assert (table.step_seconds <= table.step_seconds_max).all()
    # every engine, rank and part: measured bytes equal the explained bytes exactly
    assert (table.measured_bytes == table.explained_bytes).all(), table[
        table.measured_bytes != table.explained_bytes
    ]
    # and where nothing needed explaining, that is the paper's formula
    plain = table[table.explanation == "formula"]
    assert (plain.measured_bytes == plain.formula_bytes).all()
    # padding and whole-parameter shards stay within 1 % of the formula, except ZeRO-2's
    # gradients between micro-batches (whole gradients of every overlapping parameter)
    sharded = table[
        (table.formula_bytes > 0) & ~((table.engine == "deepspeed-2") & (table.part == "gradients"))
    ]
    assert ((sharded["measured/formula"] - 1).abs() < 0.01).all()


@pytest.mark.slow
def test_what_each_stage_shards(table):
    psi = int(table.params.iloc[0])
    # stage 0 holds everything; master weights are fp32 and Adam keeps two fp32 moments
    assert _get(table, "deepspeed-0", "master").measured_elements == psi
    assert _get(table, "deepspeed-0", "moments").measured_elements == 2 * psi
    # ZeRO-1 keeps full gradients between micro-batches, ZeRO-2 only (about) its partition
    assert _get(table, "deepspeed-1", "gradients").measured_elements == psi
    for r in (0, 1):
        assert _get(table, "deepspeed-2", "gradients", r).measured_elements < psi
    # ZeRO-3 shards the 16-bit weights; both ranks together hold each weight once (+ padding)
    w = [_get(table, "deepspeed-3", "parameters", r).measured_elements for r in (0, 1)]
    assert psi <= sum(w) < psi + 2 * SPEC.layers * 16
    # PyTorch's ZeRO-1 gives whole parameters to ranks: unequal shards that add up exactly
    m = [_get(table, "torch-zero1", "moments", r).measured_elements for r in (0, 1)]
    assert sum(m) == 2 * psi and m[0] != m[1]
    # FSDP holds fp32 shards, no separate master copy
    assert _get(table, "torch-fsdp", "master").measured_bytes == 0
    assert _get(table, "torch-fsdp", "parameters").measured_bytes < 4 * psi * 0.51
    # training ran: a finite loss near ln(vocab) after one step
    assert (table.final_loss.between(5.0, 9.0)).all()
    wide = summary_table(table)
    assert wide.shape[0] == len(ENGINES) * 2


@pytest.mark.slow
def test_the_traced_step_holds_the_model_states_it_reports(measurement):
    timeline = measurement.timeline
    assert set(timeline.engine) == set(ENGINES) and set(timeline["rank"]) == {0, 1}
    assert (timeline[list(CATEGORIES)].sum(axis=1) == timeline["total"]).all()
    for (engine, rank), g in timeline.groupby(["engine", "rank"]):
        held = (
            measurement.states[
                (measurement.states.engine == engine) & (measurement.states["rank"] == rank)
            ]
            .set_index("part")
            .measured_bytes
        )
        # master copies and moments do not change size during a step: the tracker's labelled
        # bytes are the bytes read from the optimizer
        for part in ("master", "moments"):
            assert g[part].max() == held[part], (engine, rank, part)
        # a step goes forward, backward (twice: two micro-batches), optimizer
        phases = g.phase[g.phase.ne(g.phase.shift())].tolist()
        assert [p for p in phases if p != "before"] == [
            "forward",
            "backward",
            "forward",
            "backward",
            "optimizer",
        ], (engine, phases)
        assert g.activations.max() > 0 and g.activations.iloc[-1] == 0
        assert g.total.max() > sum(held)
    # on two ranks ZeRO-3 holds half of ZeRO-0's moments throughout the step
    moments = timeline.groupby("engine").moments.max()
    assert moments["deepspeed-3"] * 2 == pytest.approx(moments["deepspeed-0"], rel=0.01)


def test_engine_models_are_the_papers_bytes():
    assert ENGINE_MODEL["deepspeed-2"].formula_bytes(10, 4) == {
        "parameters": 20,
        "gradients": 6,
        "master": 12,
        "moments": 24,
    }
    assert ENGINE_MODEL["deepspeed-0"].k == 12 and ENGINE_MODEL["torch-fsdp"].k == 8


def test_storage_bytes_counts_views_once():
    import torch

    flat = torch.zeros(100, dtype=torch.bfloat16)
    views = [flat[:40], flat[40:]]
    assert storage_bytes(views) == (100, 200)
    assert storage_bytes([torch.zeros(3), torch.zeros(5, dtype=torch.float64), None]) == (8, 52)


def test_bad_arguments():
    with pytest.raises(ValueError, match="engines"):
        measure_zero(SPEC, engines=["deepspeed-4"])
    with pytest.raises(ValueError, match="heads"):
        RunSpec(hidden=10, heads=3)
    with pytest.raises(TypeError, match="spec"):
        measure_zero({"hidden": 4})


def test_collective_payloads_by_kind():
    import pandas as pd

    from fieldnotes.memory.measure import collective_payloads

    ops = pd.DataFrame(
        {
            "phase": ["backward"] * 5,
            "op": [
                "allreduce_",
                "_reduce_scatter_base_",
                "allgather_into_tensor_coalesced_",
                "broadcast_",
                "barrier",
            ],
            "payload_bytes": [10, 20, 40, 80, 160],
        }
    )
    assert collective_payloads(ops) == {"reduce_payload_bytes": 30, "gather_payload_bytes": 120}
    assert collective_payloads(ops.iloc[:0]) == {
        "reduce_payload_bytes": 0,
        "gather_payload_bytes": 0,
    }


def test_zero_settings_change_only_their_group():
    from dataclasses import replace

    from fieldnotes.memory.runs import (
        BUCKET_ELEMENTS,
        DEFAULT_BUCKET_ELEMENTS,
        bucket_elements,
        deepspeed_config,
    )

    friendly = deepspeed_config(SPEC, 3)["zero_optimization"]
    assert friendly["reduce_bucket_size"] == BUCKET_ELEMENTS
    assert friendly["stage3_param_persistence_threshold"] == 0
    buckets = deepspeed_config(replace(SPEC, zero_settings="default-buckets"), 3)
    assert "reduce_bucket_size" not in buckets["zero_optimization"]
    assert buckets["zero_optimization"]["stage3_max_reuse_distance"] == 0
    persistence = deepspeed_config(replace(SPEC, zero_settings="default-persistence"), 3)
    assert "stage3_param_persistence_threshold" not in persistence["zero_optimization"]
    assert persistence["zero_optimization"]["allgather_bucket_size"] == BUCKET_ELEMENTS
    default = deepspeed_config(replace(SPEC, zero_settings="deepspeed-default"), 2)
    assert default["zero_optimization"] == {"stage": 2}
    assert (
        bucket_elements(replace(SPEC, zero_settings="deepspeed-default")) == DEFAULT_BUCKET_ELEMENTS
    )
    with pytest.raises(ValueError, match="zero_settings"):
        RunSpec(zero_settings="fast")


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), -1e-4, 0.0, "1e-4", True])
def test_runspec_rejects_a_learning_rate_that_cannot_train(lr):
    with pytest.raises(ValueError, match="lr"):
        RunSpec(lr=lr)


@pytest.mark.slow
def test_collective_payloads_are_the_communication_model(table):
    """ZeRO-3 gathers every parameter for each micro-batch's forward and backward, and the tied
    embedding once more in each (it is read again as the output head); DDP under no_sync
    all-reduces every fp32 gradient once per step."""
    from fieldnotes.memory.counting import largest_layer_parameters
    from fieldnotes.memory.runs import MICRO_BATCHES
    from fieldnotes.memory.zero import zero3_gather_elements

    config = small_bloom_config(SPEC)
    psi, tied = count_parameters(config), largest_layer_parameters(config)
    zero3 = _get(table, "deepspeed-3", "parameters")
    expected = 2 * zero3_gather_elements(psi, micro_batches=MICRO_BATCHES, gathered_twice=tied)
    assert zero3.gather_payload_bytes == pytest.approx(expected, rel=0.01)
    ddp = _get(table, "torch-zero1", "parameters")
    assert ddp.reduce_payload_bytes == pytest.approx(4 * psi, rel=0.01)


def test_default_settings_are_deepspeeds_own_defaults():
    # the page quotes these as DeepSpeed's defaults: read them from its config class
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    from fieldnotes.memory.runs import DEFAULT_BUCKET_ELEMENTS, DEFAULT_PERSISTENCE

    fields = DeepSpeedZeroConfig.model_fields
    assert int(fields["reduce_bucket_size"].default) == DEFAULT_BUCKET_ELEMENTS
    assert int(fields["allgather_bucket_size"].default) == DEFAULT_BUCKET_ELEMENTS
    assert int(fields["param_persistence_threshold"].default) == DEFAULT_PERSISTENCE
