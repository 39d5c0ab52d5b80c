"""Live tensor bytes over one training step, from an allocation tracker (not RSS).

:class:`LiveBytes` is a ``TorchDispatchMode``: every ATen operator that runs while it is active,
forward, backward (autograd runs CPU backward ops on the calling thread, inside the mode) and the
optimizer step, passes through it. A storage an operator returns that is not one of its inputs'
storages is a new allocation; a ``weakref.finalize`` on the storage records when it is freed (the
storage's Python object lives as long as the storage itself). Storages that existed before the
step are counted from when the tracker first sees them, never from time zero: those the caller
names with :meth:`LiveBytes.label` (the model states, labelled at the step's start) and those an
operator first reads as an input (``"resident"``: buffers and inputs that were there before the
step began, and storages made outside PyTorch's operators partway through the step, such as
gloo's copies of a reduce-scatter's input, which would otherwise be backdated to the start).

Each allocation gets one category, the first that applies:

- the model-state part the caller labelled it with (``parameters``, ``gradients``, ``master``,
  ``moments``), or ``buckets`` (an engine's preallocated gradient buckets), when it was live at
  the moment of labelling, or an unclaimed allocation of exactly one of ``bucket_nbytes``
  (DeepSpeed allocates its gradient buckets, ``reduce_bucket_size`` elements, during backward and
  frees them after the reduction, so they are never live when the caller labels);
- ``communication``: a buffer a ``c10d`` collective read or wrote and no part claimed (at ZeRO-3
  and FSDP these are mostly the gathered weights; elsewhere gradient buckets);
- ``activations``: created during a forward phase and still live when that phase ended (what
  autograd saves for backward, and the logits);
- ``resident`` (see above);
- ``temporaries``: everything else (created and freed within a phase, or created in backward or the
  optimizer step and not claimed).

It also records every ``c10d`` collective the step runs (:meth:`LiveBytes.collectives`): the op,
the phase and its payload, the bytes of its largest tensor argument (the whole reduced or gathered
buffer; a ring sends (N - 1)/N of it per rank for a reduce-scatter or an all-gather, twice that for
an all-reduce).

What the tracker cannot see: memory allocated outside PyTorch operators (gloo's own send and
receive buffers, Python objects) and the allocator's caching or fragmentation.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass

from torch.utils._python_dispatch import TorchDispatchMode

STATE_PARTS = ("parameters", "gradients", "master", "moments")
LABELS = (*STATE_PARTS, "buckets")  # what a caller can claim storages for
CATEGORIES = (*LABELS, "activations", "communication", "resident", "temporaries")
PHASES = ("forward", "backward", "optimizer")


@dataclass
class _Allocation:
    nbytes: int
    phase: str  # the phase it was created in ("before" for storages older than the step)
    storage: weakref.ref
    label: str | None = None
    communication: bool = False
    outlived_forward: bool = False
    resident: bool = False


def _storages(value):
    """The untyped storages of the plain tensors in an operator's arguments or results."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value.to_local() if hasattr(value, "to_local") else value
        if t.layout == torch.strided and t.device.type != "meta":
            st = t.untyped_storage()
            if st.nbytes() > 0:
                yield st
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _storages(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _storages(v)


def _tensor_bytes(value) -> int:
    """Bytes of the tensor elements in a tensor or a (nested) list of them (views count their own
    elements, not their storage)."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value.to_local() if hasattr(value, "to_local") else value
        return t.numel() * t.element_size()
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class LiveBytes(TorchDispatchMode):
    """Record every storage allocated and freed while active; see the module docstring.

    ``bucket_nbytes``: sizes in bytes of the engine's gradient buckets (categorised ``buckets``).
    """

    def __init__(self, bucket_nbytes=()):
        super().__init__()
        self._bucket_nbytes = frozenset(int(n) for n in bucket_nbytes)
        self._t0 = time.perf_counter()
        self._allocations: list[_Allocation] = []
        self._live: dict[int, int] = {}  # storage data pointer -> allocation index
        self._events: list[tuple[float, int, int]] = []  # (seconds, allocation, +/- bytes)
        self._phases: list[tuple[float, str]] = []
        self._resized = weakref.WeakSet()  # storage objects swept as resized away
        self._collectives: list[tuple[str, str, int]] = []  # (phase, op, payload bytes)
        self.phase = "before"

    # --- what the caller tells the tracker -----------------------------------------------------

    def start_phase(self, name: str) -> None:
        """Mark the start of ``name`` (one of ``PHASES``); a forward that ends marks what outlives it."""
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        if self.phase == "forward":
            for i in self._live.values():
                if self._allocations[i].phase == "forward":
                    self._allocations[i].outlived_forward = True
        self._sweep()
        self.phase = name
        self._phases.append((self._now(), name))

    def label(self, part: str, tensors) -> None:
        """Claim the live storages behind ``tensors`` for ``part`` (one of ``LABELS``; first claim
        wins)."""
        if part not in LABELS:
            raise ValueError(f"part must be one of {LABELS}, got {part!r}")
        for st in _storages(list(tensors)):
            i = self._index(st, resident=True)
            if self._allocations[i].label is None:
                self._allocations[i].label = part

    # --- the dispatch hook ---------------------------------------------------------------------

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {st.data_ptr() for st in _storages((args, kwargs))}
        for st in _storages((args, kwargs)):
            self._index(st, resident=True)
        out = func(*args, **kwargs)
        collective = func.namespace == "c10d"
        for st in _storages(out):
            ptr = st.data_ptr()
            if ptr not in inputs and ptr not in self._live:
                self._index(st, resident=False)
        if collective:
            payload = max((_tensor_bytes(a) for a in (*args, *kwargs.values())), default=0)
            self._collectives.append((self.phase, func.__name__, payload))
            for st in _storages((args, kwargs, out)):
                self._allocations[self._live[st.data_ptr()]].communication = True
            self._sweep()
        return out

    # --- bookkeeping ---------------------------------------------------------------------------

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _index(self, st, *, resident: bool) -> int:
        """The allocation index of a live storage, registering it if unseen."""
        ptr = st.data_ptr()
        if ptr in self._live:
            return self._live[ptr]
        i = len(self._allocations)
        if st in self._resized:  # resized back up in place: a new allocation, not an old one
            self._resized.discard(st)
            resident = False
        phase = "before" if resident else self.phase
        self._allocations.append(
            _Allocation(st.nbytes(), phase, weakref.ref(st), resident=resident)
        )
        self._live[ptr] = i
        self._events.append((self._now(), i, st.nbytes()))  # first seen now, whatever its age
        weakref.finalize(st, self._freed, ptr, i)
        return i

    def _sweep(self) -> None:
        """Count as freed the live storages resized away in place (FSDP2 frees gathered weights
        with ``untyped_storage().resize_(0)``, which no operator and no finalizer sees)."""
        for ptr, i in list(self._live.items()):
            st = self._allocations[i].storage()
            if st is not None and (st.nbytes() == 0 or st.data_ptr() != ptr):
                self._freed(ptr, i)
                self._resized.add(st)

    def _freed(self, ptr: int, i: int) -> None:
        if self._live.get(ptr) != i:
            return  # already counted (resized away, then garbage-collected)
        del self._live[ptr]
        self._events.append((self._now(), i, -self._allocations[i].nbytes))

    def _category(self, a: _Allocation) -> str:
        if a.label is not None:
            return a.label
        if a.nbytes in self._bucket_nbytes:
            return "buckets"
        if a.communication:
            return "communication"
        if a.outlived_forward:
            return "activations"
        if a.resident:
            return "resident"
        return "temporaries"

    def collectives(self):
        """A DataFrame, one row per collective the step ran: phase, op, payload bytes."""
        import pandas as pd

        return pd.DataFrame(self._collectives, columns=["phase", "op", "payload_bytes"])

    def timeline(self):
        """A DataFrame, one row per allocation or free: seconds, phase, live bytes per category."""
        import numpy as np
        import pandas as pd

        events = sorted(self._events, key=lambda e: e[0])
        index = {c: k for k, c in enumerate(CATEGORIES)}
        live = np.zeros(len(CATEGORIES), dtype=np.int64)
        rows = np.zeros((len(events), len(CATEGORIES)), dtype=np.int64)
        for k, (_, i, delta) in enumerate(events):
            live[index[self._category(self._allocations[i])]] += delta
            rows[k] = live
        table = pd.DataFrame(rows, columns=list(CATEGORIES))
        seconds = np.array([e[0] for e in events])
        starts = [s for s, _ in self._phases]
        names = ["before"] + [n for _, n in self._phases]
        table.insert(
            0, "phase", [names[int(np.searchsorted(starts, t, side="right"))] for t in seconds]
        )
        table.insert(0, "seconds", seconds)
        table["total"] = table[list(CATEGORIES)].sum(axis=1)
        return table


def peak_row(timeline):
    """The timeline's row at its largest total (the first such row): bytes per category, phase."""
    if len(timeline) == 0:
        raise ValueError("timeline is empty: no allocation was recorded")
    return timeline.loc[timeline["total"].idxmax()]


__all__ = ["CATEGORIES", "LABELS", "PHASES", "STATE_PARTS", "LiveBytes", "peak_row"]
