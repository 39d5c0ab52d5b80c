"""fieldnotes.memory.gpucheck: reading the GPU check's JSON."""

from __future__ import annotations

import json

import pytest

from fieldnotes.memory.gpucheck import find_gpu_check, gpu_check_tables


def test_tables_from_a_synthetic_check(tmp_path):
    psi = 1000
    s, b, h, a = 16, 1, 8, 2
    data = {
        "config": {"vocab_size": 10, "hidden_size": h, "n_layer": 2, "n_head": a},
        "seq": s,
        "batch": b,
        "parameters": psi,
        "weights_bytes": 2 * psi,
        "grads_bytes": 2 * psi + 10,
        "master_bytes": 4 * psi,
        "adam_bytes": 8 * psi,
        "model_states_bytes": 16 * psi + 10,
        "saved_bytes_per_block": [48 * s * b * h + 5 * a * s * s * b] * 2,
    }
    p = tmp_path / "check.json"
    p.write_text(json.dumps(data))
    states, acts, _ = gpu_check_tables(find_gpu_check(p))
    assert states.loc["total", "formula bytes"] == 16 * psi
    assert states.loc["16-bit gradients", "bytes/param measured"] == pytest.approx(2.01)
    measured = 48 * s * b * h + 5 * a * s * s * b
    assert acts["bytes per layer"].tolist() == [
        measured, 34 * s * b * h + 5 * a * s * s * b, round(32.0625 * s * b * h + 6 * a * s * s * b)
    ]


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        find_gpu_check(tmp_path / "nope.json")


def test_facts_of_a_check():
    from fieldnotes.memory.gpucheck import gpu_check_facts

    psi, s, b, h, a = 1000, 16, 1, 8, 2
    data = {
        "config": {"hidden_size": h, "n_head": a},
        "seq": s,
        "batch": b,
        "parameters": psi,
        "grads_bytes": 2 * psi + 10,
        "model_states_bytes": 16 * psi + 10,
        "saved_bytes_per_block": [48 * s * b * h + 5 * a * s * s * b, 0],
    }
    f = gpu_check_facts(data)
    assert f["gpu"] == "GPU" and (f["seq"], f["batch"]) == (s, b)
    assert f["states_bytes_per_param"] == pytest.approx(16.01)
    assert f["grads_extra_bytes"] == 10
    formula = 34 * s * b * h + 5 * a * s * s * b
    measured = 48 * s * b * h + 5 * a * s * s * b
    assert f["measured_over_formula"] == pytest.approx(measured / formula)
    assert f["measured_over_fitted"] == pytest.approx(
        measured / round(32.0625 * s * b * h + 6 * a * s * s * b)
    )
    assert f["one_point_alpha"] == pytest.approx(48)  # α alone, the score term held at 5·as²b
