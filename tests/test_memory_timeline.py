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
    # x is read by the forward: counted from the start as resident, not as an activation
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
