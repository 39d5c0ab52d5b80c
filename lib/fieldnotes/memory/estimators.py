"""DeepSpeed's own memory estimators, captured, and reconciled term by term with the ZeRO paper.

DeepSpeed ships ``estimate_zero2_model_states_mem_needs_all_cold`` and
``estimate_zero3_model_states_mem_needs_all_cold``, which *print* a table. Their model differs
from the paper's (2 + 2 + K)·Ψ in named ways, which :func:`reconcile_deepspeed` spells out:

- the printed "GB" are GiB (bytes / 2^30);
- ZeRO-2 charges 18 bytes per sharded parameter (16-bit and fp32 gradients, fp32 master weights,
  two Adam moments): the paper's 2 + K = 14 plus a 4-byte fp32 gradient partition;
- ZeRO-3 charges 18 bytes per sharded parameter (the paper: 2 + 2 + K = 16) plus 4 bytes per
  parameter of the largest layer (its gathered 16-bit weights and gradients);
- with offload the paper's side is ZeRO-Offload's (:func:`model_states` with ``offload``): the
  gradient partition leaves the GPU with the optimizer states, and DeepSpeed's GPU figure is the
  16-bit weights (2Ψ at ZeRO-2, 2Ψ/N at ZeRO-3) or, with parameter offload, only the gathered
  largest layer;
- the CPU column carries a 1.5 "additional buffer factor"; without offload it is the fp32 copy of
  the model every process on a node loads (4 bytes per parameter per GPU), with offload the larger
  of that and the offloaded states (16 or 18 bytes per parameter per node).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from fractions import Fraction

from fieldnotes.memory.zero import GiB, check_count, model_states, shard

BUFFER_FACTOR = Fraction(3, 2)
_ROW = re.compile(r"^\s*([\d.]+)GB \|\s*([\d.]+)GB \|\s*(.+?)\s*$")


def _parse(printed: str, stage: int) -> list[dict]:
    rows = []
    for line in printed.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        opts = dict(kv.split("=") for kv in m.group(3).replace(" ", "").split(","))
        rows.append(
            {
                "stage": stage,
                # DeepSpeed prints the device as "none" or e.g. "OffloadDeviceEnum.cpu"
                "offload_optimizer": opts.get("offload_optimizer", "none") != "none",
                "offload_param": opts.get("offload_param", "none") != "none",
                "zero_init": opts.get("zero_init", "1") == "1",
                "cpu_printed": m.group(1),
                "gpu_printed": m.group(2),
            }
        )
    if not rows:
        raise RuntimeError(f"could not parse DeepSpeed's estimator output:\n{printed}")
    return rows


def deepspeed_estimates(total_params, n_gpus, largest_layer_params, num_nodes=1):
    """Run DeepSpeed's two ``*_all_cold`` estimators and return their printed table (pandas).

    ``n_gpus`` is GPUs per node. Columns ``cpu_printed``/``gpu_printed`` are the strings DeepSpeed
    printed (labelled "GB", in fact GiB, two decimals).
    """
    import pandas as pd
    import torch

    if "DS_ACCELERATOR" not in os.environ and not torch.cuda.is_available():
        # the estimators need no accelerator; this only silences DeepSpeed's CPU-fallback warning
        os.environ["DS_ACCELERATOR"] = "cpu"
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs_all_cold
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs_all_cold

    total_params = check_count("total_params", total_params, minimum=1)
    n_gpus = check_count("n_gpus", n_gpus, minimum=1)
    largest = check_count("largest_layer_params", largest_layer_params, minimum=1)
    num_nodes = check_count("num_nodes", num_nodes, minimum=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        estimate_zero2_model_states_mem_needs_all_cold(
            total_params=total_params, num_gpus_per_node=n_gpus, num_nodes=num_nodes
        )
    rows = _parse(out.getvalue(), 2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        estimate_zero3_model_states_mem_needs_all_cold(
            total_params=total_params,
            largest_layer_params=largest,
            num_gpus_per_node=n_gpus,
            num_nodes=num_nodes,
        )
    rows += _parse(out.getvalue(), 3)
    return pd.DataFrame(rows)


def _offload(row) -> str | None:
    """The ``model_states`` offload setting of one estimator row."""
    if row["offload_param"]:
        return "parameters"
    return "optimizer" if row["offload_optimizer"] else None


def _terms(row, p: int, per_node: int, nodes: int, largest: int):
    """(paper bytes on the GPU, {named difference: bytes}, CPU bytes) for one estimator row.

    The paper's side is :func:`model_states` at the row's stage and offload; the CPU bytes are
    DeepSpeed's own formula (per node, with its buffer factor), rebuilt to check the parse.
    """
    n = per_node * nodes
    s = shard(p, n)
    exact = Fraction(p, n)  # DeepSpeed divides without rounding up
    offload = _offload(row)
    gpu_paper = model_states(p, stage=row["stage"], n_gpus=n, offload=offload).total
    terms: dict[str, Fraction] = {}
    if row["stage"] == 3:
        terms["largest layer gathered (4 B per param of it)"] = Fraction(4 * largest)
    if offload is None and row["stage"] == 2:
        terms["fp32 gradient partition (4 B per sharded param)"] = 4 * exact
        terms["rounding of the shard"] = 14 * exact - 14 * s
    elif offload is None:
        terms["18 B per sharded param instead of 16"] = 2 * exact
        terms["rounding of the shard"] = 16 * exact - 16 * s
    elif offload == "optimizer" and row["stage"] == 3:
        terms["rounding of the shard"] = 2 * exact - 2 * s  # of the 16-bit weight shard
    if row["stage"] == 2:
        cpu = p * (max(4 * n, 16) if offload else 4 * per_node)
    elif offload is None:
        cpu = (largest if row["zero_init"] else p) * 4 * per_node
    else:
        per_param = Fraction(18 if offload == "parameters" else 16, nodes)
        cpu = p * (per_param if row["zero_init"] else max(4 * per_node, per_param))
    return gpu_paper, terms, cpu * BUFFER_FACTOR


def reconcile_deepspeed(total_params, n_gpus, largest_layer_params, num_nodes=1):
    """DeepSpeed's printed estimates next to the paper's model plus the named differences (pandas).

    For every row: ``paper_gpu_bytes`` (this package's model at the row's offload setting),
    ``paper_cpu_bytes_per_node`` (its offloaded bytes, all GPUs of a node), ``terms`` (name -> bytes),
    ``reconstructed_gpu``/``reconstructed_cpu`` (formatted like DeepSpeed, GiB with two decimals)
    and whether they equal what DeepSpeed printed.
    """
    table = deepspeed_estimates(total_params, n_gpus, largest_layer_params, num_nodes)
    p, per_node, nodes = int(total_params), int(n_gpus), int(num_nodes)
    largest = int(largest_layer_params)
    paper_col, paper_cpu_col, terms_col, gpu_col, cpu_col = [], [], [], [], []
    for _, row in table.iterrows():
        gpu_paper, terms, cpu = _terms(row, p, per_node, nodes, largest)
        offloaded = model_states(p, stage=row["stage"], n_gpus=per_node * nodes, offload=_offload(row))
        paper_cpu_col.append(per_node * offloaded.cpu_total)
        gpu = gpu_paper + sum(terms.values(), Fraction(0))
        paper_col.append(gpu_paper)
        terms_col.append({k: float(v) for k, v in terms.items()})
        # DeepSpeed truncates to int bytes before printing
        gpu_col.append(f"{int(gpu) / GiB:.2f}")
        cpu_col.append(f"{int(cpu) / GiB:.2f}")
    table["paper_gpu_bytes"] = paper_col
    table["paper_gpu_GB"] = [b / 1e9 for b in paper_col]
    table["paper_cpu_bytes_per_node"] = paper_cpu_col
    table["terms"] = terms_col
    table["reconstructed_gpu"] = gpu_col
    table["reconstructed_cpu"] = cpu_col
    table["gpu_matches"] = table["reconstructed_gpu"] == table["gpu_printed"]
    table["cpu_matches"] = table["reconstructed_cpu"] == table["cpu_printed"]
    return table
