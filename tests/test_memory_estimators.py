"""fieldnotes.memory.estimators: DeepSpeed's estimators against the paper, term by term."""

from __future__ import annotations

import pytest

from fieldnotes.memory import (
    GiB,
    bloomz_7b1_config,
    deepspeed_estimates,
    largest_layer_parameters,
    model_states,
    reconcile_deepspeed,
)

PSI = 7_500_000_000


def _row(table, stage, opt, param=False, zero_init=True):
    sel = table[
        (table.stage == stage)
        & (table.offload_optimizer == opt)
        & (table.offload_param == param)
        & (table.zero_init == zero_init)
    ]
    return sel.iloc[0]


@pytest.mark.parametrize(
    "gpus, zero2, zero3",
    [(4, "45.40", "32.20"), (8, "29.69", "16.48"), (64, "15.93", "2.73")],
)
def test_deepspeed_prints_gib_with_its_own_terms(gpus, zero2, zero3):
    largest = 205_000_000
    t = deepspeed_estimates(PSI, gpus, largest)
    z2 = _row(t, 2, False).gpu_printed
    z3 = _row(t, 3, False).gpu_printed
    assert (z2, z3) == (zero2, zero3)
    # the printed "GB" is GiB: the paper's 10^9-byte figure plus exactly the named terms
    paper2 = model_states(PSI, stage=2, n_gpus=gpus).total
    assert f"{(paper2 + 4 * PSI / gpus) / GiB:.2f}" == z2  # + fp32 gradient partition
    assert f"{(paper2 + 4 * PSI / gpus) / 1e9:.2f}" != z2
    paper3 = model_states(PSI, stage=3, n_gpus=gpus).total
    assert f"{(paper3 + 2 * PSI / gpus + 4 * largest) / GiB:.2f}" == z3
    # the CPU column carries the 1.5 buffer factor: an fp32 model copy per GPU process
    assert _row(t, 2, False).cpu_printed == f"{PSI * 4 * gpus * 1.5 / GiB:.2f}"


@pytest.mark.parametrize("gpus, nodes", [(1, 1), (4, 1), (8, 1), (8, 8), (3, 2)])
def test_every_estimator_row_is_reconstructed(gpus, nodes):
    t = reconcile_deepspeed(PSI + 1, gpus, 123_456_789, nodes)
    assert len(t) == 8
    assert t.gpu_matches.all(), t[["gpu_printed", "reconstructed_gpu"]]
    assert t.cpu_matches.all(), t[["cpu_printed", "reconstructed_cpu"]]


def test_the_posts_zero3_on_4_gpus_for_bloomz():
    cfg = bloomz_7b1_config()
    psi = 7_069_016_064
    t = reconcile_deepspeed(psi, 4, largest_layer_parameters(cfg))
    row = _row(t, 3, False)
    # paper: 16Ψ/4 bytes = 28.3 GB; DeepSpeed: + 2Ψ/4 + 4·(embedding) -> more than 33 GiB
    assert row.paper_gpu_bytes == 4 * psi
    assert float(row.gpu_printed) > 33


def test_bad_input():
    with pytest.raises(ValueError, match="n_gpus"):
        deepspeed_estimates(PSI, 0, 10)


def test_offload_rows_are_zero_offload_plus_named_terms():
    # BLOOMZ-7b1, ZeRO-2, 4 GPUs, optimizer offload: DeepSpeed's 13.17 GiB is exactly 2Ψ
    psi, largest = 7_069_016_064, largest_layer_parameters(bloomz_7b1_config())
    t = reconcile_deepspeed(psi, 4, largest)
    z2 = _row(t, 2, True)
    assert z2.gpu_printed == "13.17" and z2.paper_gpu_bytes == 2 * psi and z2.terms == {}
    # ZeRO-3 + optimizer offload: the 16-bit weight shard + the gathered largest layer
    z3 = _row(t, 3, True)
    assert z3.paper_gpu_bytes == 2 * -(-psi // 4)
    assert set(z3.terms) == {"largest layer gathered (4 B per param of it)", "rounding of the shard"}
    # ZeRO-3 + parameter offload: nothing resident, only the gathered largest layer
    inf = _row(t, 3, True, param=True)
    assert inf.paper_gpu_bytes == 0 and inf.gpu_printed == f"{4 * largest / GiB:.2f}"
    # on the CPU the paper's 14 or 16 B per parameter per node; DeepSpeed keeps fp32 gradients
    assert z2.paper_cpu_bytes_per_node == 4 * 14 * -(-psi // 4)
    assert inf.paper_cpu_bytes_per_node == 4 * 16 * -(-psi // 4)
