"""fieldnotes.memory.activations: Korthikanti et al. (2022) activation memory per layer."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.memory import activation_bytes, activation_bytes_per_layer


def test_a_gpt3_sized_layer():
    # GPT-3 175B layer (s = 2048, b = 1, h = 12288, a = 96): 34·sbh = 855.6 MB, 5as²b = 2.01 GB
    s, b, h, a = 2048, 1, 12288, 96
    assert activation_bytes_per_layer(s, b, h, a) == s * b * h * 34 + 5 * a * s * s * b
    assert activation_bytes_per_layer(s, b, h, a) == 855_638_016 + 2_013_265_920
    assert activation_bytes_per_layer(s, b, h, a, "selective") == 855_638_016
    assert activation_bytes_per_layer(s, b, h, a, "full") == 50_331_648


@given(
    s=st.integers(1, 8192),
    b=st.integers(1, 64),
    d=st.integers(1, 128),
    a=st.integers(1, 128),
    layers=st.integers(0, 96),
)
def test_formula_and_ordering(s, b, d, a, layers):
    h = a * d  # heads divide the width (head size d)
    none = activation_bytes_per_layer(s, b, h, a)
    # the paper's expression, evaluated in exact rationals
    assert none == s * b * h * (34 + Fraction(5 * a * s, h))
    sel = activation_bytes_per_layer(s, b, h, a, recompute="selective")
    full = activation_bytes_per_layer(s, b, h, a, recompute="full")
    assert full < sel < none
    assert activation_bytes(s, b, h, a, layers, "selective") == layers * sel


def test_bad_input():
    with pytest.raises(ValueError, match="recompute"):
        activation_bytes_per_layer(8, 1, 8, 1, recompute="some")
    with pytest.raises(ValueError, match="seq_len"):
        activation_bytes_per_layer(0, 1, 8, 1)
    with pytest.raises(ValueError, match="heads"):
        activation_bytes_per_layer(8, 1, 8, 2.5)
    with pytest.raises(ValueError, match="multiple of heads"):
        activation_bytes_per_layer(8, 1, 10, 4)


@given(
    budget=st.integers(0, 10**12),
    b=st.integers(1, 8),
    d=st.integers(1, 128),
    a=st.integers(1, 64),
    layers=st.integers(1, 48),
    mode=st.sampled_from(["none", "selective", "full"]),
)
def test_crossover_is_the_first_length_over_budget(budget, b, d, a, layers, mode):
    from fieldnotes.memory import crossover_seq_len

    h = a * d

    s = crossover_seq_len(budget, b, h, a, layers, mode)
    assert activation_bytes(s, b, h, a, layers, mode) > budget
    assert s == 1 or activation_bytes(s - 1, b, h, a, layers, mode) <= budget


def test_crossover_for_bloomz_against_zero3_on_8_gpus():
    from fieldnotes.memory import crossover_seq_len

    # 30 layers of 34·s·4096 + 160·s² bytes pass 16Ψ/8 = 14.14 GB between 1,335 and 1,336 tokens
    states = 16 * 7_069_016_064 // 8
    s = crossover_seq_len(states, 1, 4096, 32, 30)
    assert s == 1336
    assert 30 * (34 * 1335 * 4096 + 160 * 1335**2) <= states < 30 * (34 * s * 4096 + 160 * s**2)
    with pytest.raises(ValueError, match="layers"):
        crossover_seq_len(states, 1, 4096, 32, 0)


@given(budget=st.integers(0, 10**9), c1=st.integers(1, 10**4), c2=st.integers(0, 100))
def test_first_seq_len_over_any_growing_model(budget, c1, c2):
    from fieldnotes.memory.activations import first_seq_len_over

    def at(s):
        return c1 * s + c2 * s * s

    s = first_seq_len_over(budget, at)
    assert at(s) > budget and (s == 1 or at(s - 1) <= budget)
