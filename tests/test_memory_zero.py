"""fieldnotes.memory.zero: the ZeRO paper's model-state arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.memory import GB, ModelStates, communication_elements, model_states, zero_table

PSI = 7_500_000_000


def test_zero_paper_figure_1_and_table_1():
    # Rajbhandari et al. 2020, Figure 1: Ψ = 7.5 B, N_d = 64, K = 12
    gb = [model_states(PSI, stage=s, n_gpus=64).total / GB for s in range(4)]
    assert gb[0] == 120.0
    assert round(gb[1], 1) == 31.4
    assert round(gb[2], 1) == 16.6
    assert round(gb[3], 2) == 1.88
    # exact bytes of the three terms
    assert model_states(PSI, stage=1, n_gpus=64) == ModelStates(2 * PSI, 2 * PSI, 12 * PSI // 64)
    assert model_states(PSI, stage=2, n_gpus=64) == ModelStates(
        2 * PSI, 2 * PSI // 64, 12 * PSI // 64
    )
    assert model_states(PSI, stage=3, n_gpus=64).total == 16 * PSI // 64 == 1_875_000_000


def test_the_posts_zero3_division():
    # the post: 120 GB / 4 = 30 GB and 120 GB / 8 = 15 GB with ZeRO-3
    assert model_states(PSI, stage=3, n_gpus=4).total == 30 * GB
    assert model_states(PSI, stage=3, n_gpus=8).total == 15 * GB


def test_parts_units_and_addition():
    ms = model_states(1000, stage=0, n_gpus=1)
    assert (ms.parameters, ms.gradients, ms.optimizer_states) == (2000, 2000, 12000)
    assert ms.gb() == 16000 / 1e9 and ms.gib() == 16000 / 2**30
    assert (ms + ms).total == 32000


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"params": 10, "stage": 4, "n_gpus": 1}, "stage"),
        ({"params": 10, "stage": -1, "n_gpus": 1}, "stage"),
        ({"params": 10, "stage": 1.5, "n_gpus": 1}, "stage"),
        ({"params": 10, "stage": 1, "n_gpus": 0}, "n_gpus"),
        ({"params": 0, "stage": 1, "n_gpus": 1}, "params"),
        ({"params": -5, "stage": 1, "n_gpus": 1}, "params"),
        ({"params": 7.5, "stage": 1, "n_gpus": 1}, "params"),
        ({"params": "7", "stage": 1, "n_gpus": 1}, "params"),
        ({"params": 10, "stage": 1, "n_gpus": 2.5}, "n_gpus"),
        ({"params": 10, "stage": 1, "n_gpus": 2, "k": 1.5}, "k"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    params = kwargs.pop("params")
    with pytest.raises(ValueError, match=name):
        model_states(params, **kwargs)


def test_whole_float_counts_are_accepted():
    assert model_states(7.5e9, stage=3, n_gpus=64).total == 1_875_000_000


@given(
    params=st.integers(1, 10**13),
    n=st.integers(1, 4096),
    k=st.integers(0, 16),
    wb=st.integers(0, 4),
    gb=st.integers(0, 4),
)
def test_properties(params, n, k, wb, gb):
    states = [
        model_states(params, stage=s, n_gpus=n, k=k, weight_bytes=wb, grad_bytes=gb)
        for s in range(4)
    ]
    # stage 0 is (w + g + K)·Ψ whatever N is
    assert states[0].total == (wb + gb + k) * params
    # each stage holds no more than the one before
    assert all(a.total >= b.total for a, b in zip(states, states[1:], strict=False))
    # the shards on N GPUs cover the whole, with less than one element of padding per GPU
    s3 = states[3]
    per = wb + gb + k
    assert per * params <= n * s3.total <= per * (params + n - 1)
    if n == 1:
        assert len({s.total for s in states}) == 1


def test_zero_table_has_every_stage_and_gpu_count():
    t = zero_table(PSI, gpus=(1, 4, 8, 64))
    assert len(t) == 16
    row = t[(t.gpus == 64) & (t.stage == 2)].iloc[0]
    assert row.total_bytes == 2 * PSI + 14 * PSI // 64


def test_communication_volume_section_7():
    # ZeRO-1/2 move what data parallelism moves; ZeRO-3 1.5 times that (many GPUs: N/(N-1) -> 1)
    n = 64
    paper = [communication_elements(PSI, stage=s, n_gpus=n) * n / (n - 1) for s in range(4)]
    assert paper == [2 * PSI] * 3 + [3 * PSI]
    # a ring moves (N - 1)/N of the volume: on 4 GPUs an all-reduce sends 1.5 Ψ per GPU
    assert communication_elements(PSI, stage=0, n_gpus=4) == Fraction(3, 2) * PSI
    assert communication_elements(PSI, stage=0, n_gpus=1) == 0
    with pytest.raises(ValueError, match="stage"):
        communication_elements(PSI, stage=5, n_gpus=4)


def test_accumulation_regathers_zero3_weights_every_micro_batch():
    ring = Fraction(3, 4) * PSI  # one ring collective of Ψ elements on 4 GPUs
    sent = [communication_elements(PSI, stage=s, n_gpus=4, micro_batches=8) for s in range(4)]
    # DDP and ZeRO-1 reduce once per step; ZeRO-2 reduce-scatters every micro-batch; ZeRO-3 also
    # gathers the weights twice per micro-batch
    assert sent == [2 * ring, 2 * ring, 9 * ring, 24 * ring]
    ms = model_states(10, stage=0, n_gpus=1)
    assert ms.parameters == 20


def test_fewest_gpus_under_a_budget():
    from fieldnotes.memory import min_gpus

    psi = 7_069_016_064  # BLOOMZ-7b1
    budget = 40 * GB
    # 16Ψ/3 = 37.7 GB; 2Ψ + 14Ψ/4 = 38.9 GB; 4Ψ + 12Ψ/8 = 38.9 GB; 16Ψ never fits
    assert [min_gpus(psi, stage=s, budget_bytes=budget) for s in range(4)] == [None, 8, 4, 3]
    for stage in (1, 2, 3):
        n = min_gpus(psi, stage=stage, budget_bytes=budget)
        assert model_states(psi, stage=stage, n_gpus=n).total <= budget
        assert model_states(psi, stage=stage, n_gpus=n - 1).total > budget
    # ZeRO-2 keeps 2Ψ whole: a budget below it is never met
    assert min_gpus(psi, stage=2, budget_bytes=2 * psi - 1) is None
    assert min_gpus(10, stage=3, budget_bytes=0) is None
    with pytest.raises(ValueError, match="budget_bytes"):
        min_gpus(psi, stage=3, budget_bytes=-1)


def test_zero_offload_keeps_only_16bit_weights_on_the_gpu():
    # the pinned figure: Ψ = 7.5 B, ZeRO-2, 4 GPUs, optimizer offload -> 2Ψ on the GPU
    ms = model_states(PSI, stage=2, n_gpus=4, offload="optimizer")
    assert ms.total == 2 * PSI == 15 * GB
    assert (ms.parameters, ms.gradients, ms.optimizer_states) == (2 * PSI, 0, 0)
    # Ren et al. 2021: gradients, fp32 master weights and Adam moments on the CPU, 14 B per param
    assert ms.cpu_total == 14 * PSI // 4
    assert (ms.cpu_gradients, ms.cpu_optimizer_states) == (2 * PSI // 4, 12 * PSI // 4)
    # at stage 3 the GPU keeps its weight shard; with parameter offload nothing resident
    assert model_states(PSI, stage=3, n_gpus=4, offload="optimizer").total == 2 * PSI // 4
    infinity = model_states(PSI, stage=3, n_gpus=4, offload="parameters")
    assert infinity.total == 0 and infinity.cpu_total == 16 * PSI // 4


@given(psi=st.integers(1, 10**12), stage=st.integers(1, 3), n=st.integers(1, 1024))
def test_offload_moves_bytes_without_losing_any(psi, stage, n):
    on_gpu = model_states(psi, stage=stage, n_gpus=n)
    off = model_states(psi, stage=stage, n_gpus=n, offload="optimizer")
    assert off.parameters == on_gpu.parameters
    assert off.cpu_optimizer_states == on_gpu.optimizer_states
    assert off.cpu_gradients == 2 * -(-psi // n)  # this rank's gradient partition
    assert (off + off).cpu_total == 2 * off.cpu_total


@pytest.mark.parametrize(
    "stage, offload",
    [(0, "optimizer"), (0, "parameters"), (1, "parameters"), (2, "parameters"), (2, "nvme"), (2, True)],
)
def test_offload_deepspeed_does_not_support_is_an_error(stage, offload):
    with pytest.raises(ValueError, match="offload"):
        model_states(PSI, stage=stage, n_gpus=4, offload=offload)


def test_a_tied_embedding_is_gathered_again_for_the_output_head():
    from fieldnotes.memory.zero import zero3_gather_elements

    # every parameter for forward and backward of each micro-batch, the tied part once more in each
    assert zero3_gather_elements(1000, micro_batches=2) == 4000
    assert zero3_gather_elements(1000, micro_batches=2, gathered_twice=400) == 5600
    plain = communication_elements(1000, stage=3, n_gpus=4, micro_batches=2)
    tied = communication_elements(1000, stage=3, n_gpus=4, micro_batches=2, gathered_twice=400)
    assert plain == Fraction(3, 4) * 6000 and tied - plain == Fraction(3, 4) * 1600
    # only ZeRO-3 gathers per pass: the other stages ignore it
    assert communication_elements(1000, stage=2, n_gpus=4, gathered_twice=400) == \
        communication_elements(1000, stage=2, n_gpus=4)
    with pytest.raises(ValueError, match="gathered_twice"):
        zero3_gather_elements(1000, gathered_twice=-1)
