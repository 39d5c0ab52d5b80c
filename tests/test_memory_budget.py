"""fieldnotes.memory.budget: frozen, LoRA and offloaded parts of a training budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldnotes.memory import (
    Part,
    count_parameters,
    linear_shapes,
    lora_parameters,
    model_states,
    training_budget,
)


def test_lora_count_agrees_with_peft_on_a_real_model():
    """peft's own LoRA wrapper is the independent oracle for r·(d_in + d_out)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BloomConfig, BloomForCausalLM

    cfg = BloomConfig(vocab_size=300, hidden_size=48, n_layer=3, n_head=4)
    targets = ("query_key_value", "dense")
    torch.manual_seed(0)
    model = get_peft_model(
        BloomForCausalLM(cfg), LoraConfig(r=8, target_modules=list(targets), lora_alpha=16)
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == lora_parameters(linear_shapes(cfg, targets=targets), 8)
    assert trainable == 3 * (8 * (48 + 144) + 8 * (48 + 48))
    # the frozen base is still all there
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen == count_parameters(cfg)


def test_frozen_parts_cost_only_weights():
    b = training_budget([Part("encoder", 1000, "frozen")], stage=0, n_gpus=4)
    assert (b.weights, b.gradients, b.optimizer_states) == (2000, 0, 0)
    # ZeRO-3 shards frozen weights as well
    b3 = training_budget([Part("encoder", 1000, "frozen")], stage=3, n_gpus=4)
    assert b3.weights == 500


@given(
    trained=st.integers(1, 10**11),
    frozen=st.integers(0, 10**11),
    stage=st.integers(0, 3),
    n=st.integers(1, 512),
)
def test_trained_plus_frozen_is_model_states_plus_weights(trained, frozen, stage, n):
    parts = [Part("llm", frozen, "frozen"), Part("bridge", trained, "trained")]
    b = training_budget(parts, stage=stage, n_gpus=n)
    ms = model_states(trained, stage=stage, n_gpus=n)
    frozen_w = 2 * (-(-frozen // n) if stage == 3 else frozen)
    assert b.model_states == ms.total + frozen_w
    if stage == 0:
        return
    # ZeRO-Offload moves the gradient and optimizer-state partitions to CPU memory, not the weights
    off = training_budget(parts, stage=stage, n_gpus=n, offload="optimizer")
    cpu = model_states(trained, stage=stage, n_gpus=n, offload="optimizer").cpu_total
    assert off.cpu_model_states == cpu
    assert off.model_states == b.model_states - ms.gradients - ms.optimizer_states
    # the fp32 gradients DeepSpeed steps go with the optimizer: nothing but weights stays
    assert off.total == off.model_states
    assert b.total == b.model_states + 4 * -(-trained // n)  # the fp32 partition of the step
    if stage == 3:  # ZeRO-Infinity-style: frozen weight shards leave the GPU too
        inf = training_budget(parts, stage=3, n_gpus=n, offload="parameters")
        assert inf.total == 0 and inf.cpu_model_states == cpu + ms.parameters + frozen_w


def test_lora_part_and_activations():
    p = Part("llm", 1_000_000, "lora", lora_params=4096, lora_rank=8)
    assert (p.trainable, p.frozen) == (4096, 1_000_000)
    b = training_budget(
        [p],
        stage=0,
        n_gpus=1,
        activation_layers=2,
        seq_len=16,
        micro_batch=2,
        hidden=64,
        heads=4,
        recompute="none",
    )
    assert b.weights == 2 * 1_000_000 + 2 * 4096
    assert b.gradients == 2 * 4096 and b.optimizer_states == 12 * 4096
    # BLOOM's measured LoRA layer (22.0625 sbh + 6 as²b in bf16, and the two adapters' r-wide
    # inputs to B): frozen matmuls keep no input, so not the trained layer's 32.0625 sbh
    assert b.activations == 2 * (round(22.0625 * 16 * 2 * 64 + 6 * 4 * 16 * 16 * 2) + 2 * 2 * 16 * 2 * 8)
    trained = training_budget([Part("llm", 1_000_000)], stage=0, n_gpus=1, activation_layers=2,
                              seq_len=16, micro_batch=2, hidden=64, heads=4)
    assert trained.activations == 2 * round(32.0625 * 16 * 2 * 64 + 6 * 4 * 16 * 16 * 2)
    gpt = training_budget([Part("llm", 1_000_000)], stage=0, n_gpus=1, activation_layers=2,
                          seq_len=16, micro_batch=2, hidden=64, heads=4, architecture="gpt2")
    assert gpt.activations == 2 * round(66.0625 * 16 * 2 * 64 + 12 * 4 * 16 * 16 * 2)
    with pytest.raises(ValueError, match="LoRA coefficients"):  # none measured for GPT-2
        training_budget([p], stage=0, n_gpus=1, activation_layers=2, architecture="gpt2")
    with pytest.raises(ValueError, match="model_type"):
        training_budget([p], stage=0, n_gpus=1, activation_layers=2, architecture="t5")
    fp32 = training_budget([Part("m", 10)], stage=0, n_gpus=1, precision="fp32 (Adam)")
    assert fp32.model_states == 160


def test_bad_parts():
    with pytest.raises(ValueError, match="mode"):
        Part("x", 10, "half-frozen")
    with pytest.raises(ValueError, match="lora_params"):
        Part("x", 10, "trained", lora_params=5)
    with pytest.raises(ValueError, match="lora_rank"):
        Part("x", 10, "lora", lora_params=5)  # the rank sizes its layers' activations
    with pytest.raises(ValueError, match="lora_rank"):
        training_budget([Part("a", 10, "lora", lora_params=5, lora_rank=4),
                         Part("b", 10, "lora", lora_params=5, lora_rank=8)], stage=0, n_gpus=1)
    with pytest.raises(ValueError, match="heads"):
        training_budget([Part("x", 10)], stage=0, n_gpus=1, hidden=100, heads=3)
    with pytest.raises(ValueError, match="rank"):
        lora_parameters([(4, 4)], 0)
    with pytest.raises(ValueError, match="precision"):
        training_budget([Part("x", 10)], stage=0, n_gpus=1, precision="int8")
    with pytest.raises(ValueError, match="parts"):
        training_budget([], stage=0, n_gpus=1)


def test_bloomz_zero2_offload_is_deepspeeds_2_psi():
    # BLOOMZ-7b1, ZeRO-2 on 4 GPUs, optimizer offload: 2Ψ on the GPU (DeepSpeed: 13.17 GiB),
    # not the first edition's 2Ψ + 2Ψ/4 (17.7 GB) that kept the gradients on the GPU
    psi = 7_069_016_064
    b = training_budget([Part("llm", psi)], stage=2, n_gpus=4, offload="optimizer")
    assert b.total == 2 * psi
    assert f"{b.total / 2**30:.2f}" == "13.17"
    assert b.cpu_model_states == 14 * psi // 4
    with pytest.raises(ValueError, match="offload"):
        training_budget([Part("llm", psi)], stage=0, n_gpus=4, offload="optimizer")


def test_what_full_recomputation_leaves_on_the_gpu():
    # BLOOMZ-7b1 shape, s = 512, b = 8, ZeRO-3 on 4 GPUs, full recomputation, DeepSpeed's buckets
    from transformers import BloomConfig

    from fieldnotes.memory import predicted_activation_bytes

    s, b, h, a, layers, vocab, largest = 512, 8, 4096, 32, 30, 250_880, 1_027_604_480
    psi = 7_069_016_064
    bud = training_budget(
        [Part("llm", psi, tied_params=largest)], stage=3, n_gpus=4, activation_layers=layers, seq_len=s,
        micro_batch=b, hidden=h, heads=a, recompute="full", vocab=vocab,
        largest_layer_params=largest, bucket_elements=500_000_000,
    )
    assert bud.activations == layers * 2 * s * b * h  # the layer inputs
    # one layer recomputed: BLOOM's measured model, as the chapter's estimator uses it
    bloom = BloomConfig(vocab_size=vocab, hidden_size=h, n_layer=layers, n_head=a)
    assert bud.recomputed_layer == predicted_activation_bytes(bloom, seq_len=s, micro_batch=b)
    assert bud.recomputed_layer != 34 * s * b * h + 5 * a * s * s * b  # not GPT's count
    assert bud.logits == 4 * s * b * vocab == 4_110_417_920  # 4.11 GB of fp32 log-softmax
    assert bud.logit_gradient == 2 * bud.logits  # the loss backward's two fp32 tensors
    assert bud.gathered_layer == 2 * largest  # the embedding's 16-bit weights, as peak.py
    assert bud.buckets == 2 * 500_000_000
    assert bud.tied_gradient == 3 * 2 * largest and bud.head_gradient == 2 * largest
    # the peak is the start of backward: the logits and their two gradients beside the rest
    assert bud.peak_phase == "backward"
    assert bud.total == bud.model_states + bud.activations + bud.logits + bud.logit_gradient + (
        bud.gathered_layer + bud.buckets)
    assert sum(bud.at_peak().values()) == bud.total
    assert sum(v for k, v in bud.as_gb().items() if k not in ("total on GPU", "model states on CPU")) \
        == pytest.approx(bud.total / 1e9)
    # the LLM alone no longer fits an A100's 40 GiB at this shape (44.7 GB)
    assert not bud.fits(40 * 2**30, headroom_bytes=0) and round(bud.total / 1e9, 1) == 44.7
    assert bud.fits(50 * 10**9, headroom_bytes=0) and not bud.fits(50 * 10**9, headroom_bytes=6 * 10**9)
    # without recomputation there is no layer to recompute; below ZeRO-3 nothing is gathered
    none = training_budget([Part("llm", 10)], stage=2, n_gpus=4, activation_layers=2, seq_len=s,
                           micro_batch=b, hidden=h, heads=a, largest_layer_params=largest)
    assert none.recomputed_layer == 0 and none.gathered_layer == 0 and none.logits == 0


def test_budget_terms_are_the_peak_estimators():
    """At the measured run's shape, the budget's DeepSpeed ZeRO-3 terms are phase_peaks' terms
    (one convention: gathered 16-bit weights, bucket, logits and their gradients, tied gradients)."""
    from fieldnotes.memory import RunSpec
    from fieldnotes.memory.counting import count_parameters, largest_layer_parameters
    from fieldnotes.memory.peak import phase_peaks
    from fieldnotes.memory.runs import bucket_elements, small_bloom_config

    spec = RunSpec(hidden=96, layers=3, heads=4, vocab=500, seq_len=32, micro_batch=2)
    config = small_bloom_config(spec)
    largest = largest_layer_parameters(config)
    bud = training_budget(
        [Part("llm", count_parameters(config), tied_params=largest)], stage=3, n_gpus=2, activation_layers=spec.layers,
        seq_len=spec.seq_len, micro_batch=spec.micro_batch, hidden=spec.hidden, heads=spec.heads,
        vocab=spec.vocab, largest_layer_params=largest, bucket_elements=bucket_elements(spec),
    )
    backward, first, _, _, end, optimizer = phase_peaks(spec, "deepspeed-3", 2)
    assert bud.phase_terms("backward") == {
        "activations": backward.activations, "recomputed_layer": 0, "logits": backward.logits,
        "logit_gradient": backward.logit_gradient, "gathered_layer": backward.gathered,
        "buckets": backward.buckets, "head_gradient": 0, "tied_gradient": 0, "fp32_gradients": 0,
    }
    assert bud.phase_terms("first gradient")["head_gradient"] == first.head_gradient
    assert bud.phase_terms("backward end")["tied_gradient"] == end.tied_gradient
    # the budget has not yet taken the hidden states saved outside the blocks (three s x b x h)
    assert bud.phase_total("backward") == backward.total - backward.outer_activations
    # what the budget leaves out is CPU AdamW's single-tensor temporaries (a GPU's fused Adam has none)
    assert bud.phase_total("optimizer") == optimizer.total - optimizer.optimizer_temporaries
    with pytest.raises(ValueError, match="phase"):
        bud.phase_terms("forward")
