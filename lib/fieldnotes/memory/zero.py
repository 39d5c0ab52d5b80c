"""ZeRO's model-state arithmetic: bytes per GPU in parameters, gradients and optimizer states.

Rajbhandari et al. (2020), section 3 and Table 1: mixed-precision Adam keeps 2 bytes of 16-bit
weights, 2 bytes of 16-bit gradients and K = 12 bytes of optimizer state (fp32 master weights,
momentum and variance) per parameter, (2 + 2 + K)·Ψ bytes in all. ZeRO stage 1 shards the optimizer
states over the N_d data-parallel GPUs, stage 2 also the gradients, stage 3 also the weights.

Offload (Ren et al. 2021, ZeRO-Offload, section 4): ``offload="optimizer"`` moves each GPU's
partition of the gradients *and* of the optimizer states (fp32 master weights, momentum, variance)
to CPU memory, where the CPU runs the Adam step; the GPU keeps only the 16-bit weights (all of them
at stages 1-2, its shard at stage 3). ``offload="parameters"`` (ZeRO-Infinity-style, Rajbhandari et
al. 2021; stage 3 only) moves the 16-bit weight shard to the CPU as well: nothing stays resident on
the GPU but the layer being gathered, which belongs to a budget, not to the model states.
DeepSpeed accepts optimizer offload at stages 1-3 and parameter offload only at stage 3.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from fractions import Fraction

GB = 10**9  # the ZeRO paper's gigabyte
GiB = 2**30  # what DeepSpeed's estimators print as "GB"

OFFLOADS = (None, "optimizer", "parameters")

STAGE_NAMES = {
    0: "data parallel (no ZeRO)",
    1: "ZeRO-1: optimizer states sharded",
    2: "ZeRO-2: + gradients sharded",
    3: "ZeRO-3: + parameters sharded",
}


def check_count(name: str, value, *, minimum: int = 0) -> int:
    """Return ``value`` as an int if it is a whole number >= ``minimum``; else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    if isinstance(value, numbers.Integral):
        as_int = int(value)
    elif math.isfinite(float(value)) and float(value).is_integer():
        as_int = int(value)
    else:
        raise ValueError(f"{name} must be a whole number (a count), got {value!r}")
    if as_int < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return as_int


def check_heads(hidden, heads) -> tuple[int, int]:
    """(hidden, heads) as ints if both are counts >= 1 and ``heads`` divides ``hidden``."""
    h = check_count("hidden", hidden, minimum=1)
    a = check_count("heads", heads, minimum=1)
    if h % a:
        raise ValueError(f"hidden ({h}) must be a multiple of heads ({a}), got hidden % heads = {h % a}")
    return h, a


def shard(count: int, n_gpus: int) -> int:
    """Elements one GPU holds when ``count`` elements are split evenly over ``n_gpus`` (ceiling)."""
    return -(-count // n_gpus)


@dataclass(frozen=True)
class ModelStates:
    """Bytes of model states held on one GPU and, offloaded, in its share of CPU memory (bytes)."""

    parameters: int
    gradients: int
    optimizer_states: int
    cpu_parameters: int = 0
    cpu_gradients: int = 0
    cpu_optimizer_states: int = 0

    @property
    def total(self) -> int:
        """All model-state bytes on one GPU."""
        return self.parameters + self.gradients + self.optimizer_states

    @property
    def cpu_total(self) -> int:
        """All model-state bytes this GPU's process keeps in CPU memory (offload)."""
        return self.cpu_parameters + self.cpu_gradients + self.cpu_optimizer_states

    def gb(self) -> float:
        """The total in 10^9-byte gigabytes (the ZeRO paper's unit)."""
        return self.total / GB

    def gib(self) -> float:
        """The total in 2^30-byte gibibytes (what GPU tools and DeepSpeed print as "GB")."""
        return self.total / GiB

    def __add__(self, other: ModelStates) -> ModelStates:
        if not isinstance(other, ModelStates):
            return NotImplemented
        return ModelStates(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(ModelStates))
        )


def model_states(
    params,
    *,
    stage,
    n_gpus,
    k=12,
    weight_bytes=2,
    grad_bytes=2,
    offload=None,
) -> ModelStates:
    """Bytes per GPU in parameters, gradients and optimizer states at ZeRO ``stage`` on ``n_gpus``.

    ``params`` is Ψ, ``k`` the optimizer-state bytes per parameter (12 for mixed-precision Adam:
    fp32 master weights, momentum and variance), ``weight_bytes``/``grad_bytes`` the bytes per
    weight and gradient element (2 in 16-bit training). A sharded quantity holds ceil(Ψ / n_gpus)
    elements on each GPU (the largest shard), so results are whole bytes. ``offload`` is None,
    ``"optimizer"`` (stages 1-3) or ``"parameters"`` (stage 3), see the module doc; offloaded
    bytes are the ``cpu_*`` fields, each GPU's partition of them.
    """
    params = check_count("params", params, minimum=1)
    n_gpus = check_count("n_gpus", n_gpus, minimum=1)
    k = check_count("k", k, minimum=0)
    weight_bytes = check_count("weight_bytes", weight_bytes, minimum=0)
    grad_bytes = check_count("grad_bytes", grad_bytes, minimum=0)
    if (
        isinstance(stage, bool)
        or not isinstance(stage, numbers.Integral)
        or stage not in STAGE_NAMES
    ):
        raise ValueError(
            f"stage must be 0, 1, 2 or 3 (ZeRO stage; 0 = plain data parallel), got {stage!r}"
        )
    stage = int(stage)
    check_offload(offload, stage)
    part = shard(params, n_gpus)
    weights = weight_bytes * (part if stage >= 3 else params)
    if offload is None:
        return ModelStates(
            parameters=weights,
            gradients=grad_bytes * (part if stage >= 2 else params),
            optimizer_states=k * (part if stage >= 1 else params),
        )
    # the CPU optimizer updates only this rank's partition, so only that partition's gradients
    # travel to the CPU, at stage 1 as well (DeepSpeed runs stages 1 and 2 through one optimizer)
    on_cpu = offload == "parameters"
    return ModelStates(
        parameters=0 if on_cpu else weights,
        gradients=0,
        optimizer_states=0,
        cpu_parameters=weights if on_cpu else 0,
        cpu_gradients=grad_bytes * part,
        cpu_optimizer_states=k * part,
    )


def check_offload(offload, stage: int) -> None:
    """ValueError unless ``offload`` is one DeepSpeed supports at ZeRO ``stage``."""
    if offload not in OFFLOADS:
        raise ValueError(f"offload must be one of {OFFLOADS}, got {offload!r}")
    if offload == "optimizer" and stage == 0:
        raise ValueError("offload='optimizer' needs ZeRO stage 1, 2 or 3 (ZeRO-Offload), got stage 0")
    if offload == "parameters" and stage != 3:
        raise ValueError(f"offload='parameters' needs ZeRO stage 3, got stage {stage}")


def zero_table(
    params: int, gpus=(1, 4, 8, 64), *, k: int = 12, weight_bytes: int = 2, grad_bytes: int = 2
):
    """A pandas table of model-state bytes per GPU for every stage and GPU count (bytes and GB)."""
    import pandas as pd

    rows = []
    for n in gpus:
        for stage in STAGE_NAMES:
            ms = model_states(
                params, stage=stage, n_gpus=n, k=k, weight_bytes=weight_bytes, grad_bytes=grad_bytes
            )
            rows.append(
                {
                    "gpus": n,
                    "stage": stage,
                    "parameters": ms.parameters,
                    "gradients": ms.gradients,
                    "optimizer_states": ms.optimizer_states,
                    "total_bytes": ms.total,
                    "total_GB": ms.total / GB,
                }
            )
    return pd.DataFrame(rows)


def zero3_gather_elements(params, *, micro_batches=1, gathered_twice=0) -> int:
    """Elements ZeRO-3 all-gathers per optimizer step, counted as whole gathered buffers (a ring
    sends (N − 1)/N of each per GPU): every parameter for the forward and again for the backward
    of each of ``micro_batches``, and the ``gathered_twice`` parameters a pass uses twice (a tied
    embedding, read as the input embedding and again as the output head) once more in each pass.
    """
    params = check_count("params", params, minimum=1)
    a = check_count("micro_batches", micro_batches, minimum=1)
    twice = check_count("gathered_twice", gathered_twice, minimum=0)
    return 2 * a * (params + twice)


def communication_elements(params, *, stage, n_gpus, micro_batches=1, gathered_twice=0) -> Fraction:
    """Elements each GPU sends (and receives) per optimizer step with ring collectives.

    A ring reduce-scatter or all-gather of Ψ elements over N GPUs sends (N − 1)/N·Ψ per GPU, an
    all-reduce twice that. Per optimizer step of ``micro_batches`` accumulated micro-batches:
    data parallelism all-reduces the gradients once (2 rings, ``no_sync`` in between); ZeRO-1
    keeps full gradients while they accumulate, then reduce-scatters them and all-gathers the
    updated weights (2 rings); ZeRO-2 reduce-scatters the gradients of every micro-batch into its
    partition, then all-gathers the weights (micro_batches + 1); ZeRO-3 all-gathers the weights in
    the forward and again in the backward of every micro-batch and reduce-scatters every
    micro-batch's gradients (3·micro_batches), plus, for ``gathered_twice`` parameters used twice
    in a pass (a tied embedding), one more gather of them per pass (:func:`zero3_gather_elements`).
    With one micro-batch and many GPUs this is the ZeRO paper's section 7: 2Ψ, and 3Ψ = 1.5x for
    ZeRO-3.
    """
    params = check_count("params", params, minimum=1)
    n_gpus = check_count("n_gpus", n_gpus, minimum=1)
    a = check_count("micro_batches", micro_batches, minimum=1)
    if (
        isinstance(stage, bool)
        or not isinstance(stage, numbers.Integral)
        or stage not in STAGE_NAMES
    ):
        raise ValueError(f"stage must be 0, 1, 2 or 3, got {stage!r}")
    if int(stage) == 3:
        gathered = zero3_gather_elements(params, micro_batches=a, gathered_twice=gathered_twice)
        return Fraction(n_gpus - 1, n_gpus) * (gathered + a * params)
    rings = {0: 2, 1: 2, 2: a + 1}[int(stage)]
    return rings * Fraction(n_gpus - 1, n_gpus) * params


def min_gpus(params, *, stage, budget_bytes, k=12, weight_bytes=2, grad_bytes=2) -> int | None:
    """The fewest GPUs on which ZeRO ``stage`` keeps ``params``' model states within
    ``budget_bytes`` per GPU, or None if no number of GPUs does (the unsharded part alone is larger).
    """
    budget = check_count("budget_bytes", budget_bytes, minimum=0)

    def total(n: int) -> int:
        return model_states(
            params, stage=stage, n_gpus=n, k=k, weight_bytes=weight_bytes, grad_bytes=grad_bytes
        ).total

    params = check_count("params", params, minimum=1)
    if total(params) > budget:  # with one element per GPU only the replicated part is left
        return None
    lo, hi = 1, params  # total(hi) <= budget; totals never grow with n
    while lo < hi:
        mid = (lo + hi) // 2
        if total(mid) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return lo
