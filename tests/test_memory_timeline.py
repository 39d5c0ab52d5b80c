"""fieldnotes.memory.timeline: the allocation tracker counts what is allocated and freed, by category."""

from __future__ import annotations

import gc

import pytest
import torch

from fieldnotes.memory.timeline import CATEGORIES, LiveBytes, peak_row


def test_allocations_and_frees_are_counted_exactly():
    tracker = LiveBytes()
    with tracker:
        tracker.start_phase("optimizer")
        a = torch.zeros(1000)  # 4,000 bytes
        b = torch.ones(500, dtype=torch.float64)  # 4,000 bytes
        c = a[:10]  # a view: no new storage
        a.add_(1)  # in place: no new storage
        del a, b
        gc.collect()
    table = tracker.timeline()
    assert table["total"].max() == 8000
    assert table["total"].iloc[-1] == 4000  # the view keeps a's storage alive
    assert table["temporaries"].max() == 8000
    del c
    gc.collect()
    assert tracker.timeline()["total"].iloc[-1] == 0
    assert (tracker.timeline()[list(CATEGORIES)].sum(axis=1) == tracker.timeline()["total"]).all()


def test_what_outlives_forward_is_activations_and_labels_win():
    torch.manual_seed(0)
    w = torch.randn(64, 32, requires_grad=True)
    x = torch.randn(16, 64)
    tracker = LiveBytes()
    with tracker:
        tracker.label("parameters", [w])
        tracker.start_phase("forward")
        h = torch.tanh(x @ w)  # tanh saves its output: 16 x 32 fp32
        loss = h.sum()
        tracker.start_phase("backward")
        peak_before_backward = tracker.timeline()["total"].iloc[-1]
        loss.backward()
        tracker.label("gradients", [w.grad])
    table = tracker.timeline()
    assert table["parameters"].max() == 64 * 32 * 4
    assert table["gradients"].iloc[-1] == 64 * 32 * 4
    # x is read by the forward: resident (counted from its first read), not an activation
    assert table["resident"].max() == 16 * 64 * 4
    # h (saved by tanh) and the loss outlive the forward
    assert table[table.phase == "forward"]["activations"].max() == 16 * 32 * 4 + 4
    assert peak_before_backward == (64 * 32 + 16 * 64 + 16 * 32) * 4 + 4
    assert set(table.phase) <= {"before", "forward", "backward"}


def test_a_storage_resized_away_counts_as_freed():
    tracker = LiveBytes()
    with tracker:
        tracker.start_phase("forward")
        a = torch.zeros(256)
        a.untyped_storage().resize_(0)
        tracker.start_phase("backward")  # a sweep: the storage now holds nothing
    assert tracker.timeline()["total"].iloc[-1] == 0
    del a


def test_bucket_sizes_and_bad_arguments():
    tracker = LiveBytes(bucket_nbytes=(400,))
    with tracker:
        tracker.start_phase("backward")
        bucket = torch.empty(100)
        other = torch.empty(101)
    table = tracker.timeline()
    assert table["buckets"].iloc[-1] == 400 and table["temporaries"].iloc[-1] == 404
    del bucket, other
    with pytest.raises(ValueError, match="phase"):
        tracker.start_phase("warmup")
    with pytest.raises(ValueError, match="part"):
        tracker.label("weights", [])
    with pytest.raises(ValueError, match="empty"):
        peak_row(LiveBytes().timeline())
    assert peak_row(table)["total"] == 804


def test_tensor_bytes_count_elements_not_storage():
    from fieldnotes.memory.timeline import _tensor_bytes

    flat = torch.zeros(100, dtype=torch.bfloat16)
    assert _tensor_bytes(flat[:10]) == 20  # a view counts its own elements
    assert _tensor_bytes([flat[:10], [torch.zeros(3)]]) == 32
    assert _tensor_bytes(3) == 0


def test_a_storage_first_seen_mid_step_counts_from_then_not_from_the_start():
    """A buffer made outside PyTorch's operators partway through the step (as gloo copies a
    reduce-scatter's input) is counted from when an operator first reads it, never backdated."""
    from torch.utils._python_dispatch import _disable_current_modes

    tracker = LiveBytes()
    with tracker:
        tracker.start_phase("forward")
        a = torch.zeros(100)  # 400 bytes, an operator's allocation
        tracker.start_phase("backward")
        with _disable_current_modes():  # invisible to the tracker, like a backend's buffer
            outside = torch.ones(1000)  # 4,000 bytes
        b = outside * 2  # first seen here, as an input
    table = tracker.timeline()
    forward = table[table.phase == "forward"]
    assert forward["total"].max() == 400 and forward["resident"].max() == 0
    backward = table[table.phase == "backward"]
    assert backward["resident"].max() == 4000
    assert table["total"].max() == 400 + 4000 + 4000
    # the storage is first seen after the forward's rows: its row is not at time zero
    first = table[table["resident"] > 0].iloc[0]
    assert first["phase"] == "backward" and first["seconds"] > forward["seconds"].max()
    del a, b, outside


@pytest.mark.slow
def test_live_bytes_agree_with_pytorchs_memtracker_on_every_engine():
    """The same traced steps inside LiveBytes and torch.distributed._tools' MemTracker: the two
    trackers' peaks agree, engine by engine (MemTracker also counts storages from when it first
    sees them; it does not count a storage that is only ever read, which LiveBytes calls resident)."""
    from fieldnotes.memory import RunSpec, measure_peaks
    from fieldnotes.memory.engines import ENGINES

    spec = RunSpec(hidden=64, layers=2, heads=2, vocab=600, seq_len=16, micro_batch=2, steps=1)
    table = measure_peaks([(spec, e) for e in ENGINES], world_size=2, cross_check=True)
    peaks = table.groupby("engine")[["peak_bytes", "memtracker_peak_bytes"]].max()
    assert set(peaks.index) == set(ENGINES)
    ratio = peaks.memtracker_peak_bytes / peaks.peak_bytes - 1
    assert (ratio.abs() < 0.02).all(), ratio
