"""Any device: with the model and its inputs on the ``meta`` device, no operation of a forward pass,
a backward pass or greedy decoding creates a tensor on the CPU (the check needs no GPU), and the
training loop's autocast follows the parameters' device."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from fieldnotes.vlm.fusion import BLIND, FUSIONS, FusionConfig
from fieldnotes.vlm.language import LanguageConfig, build_language_model
from fieldnotes.vlm.model import MedVLM
from fieldnotes.vlm.train import autocast_device_type


class CPUTensorWatch(TorchDispatchMode):
    """Records every aten operation that returns a tensor on the CPU."""

    def __init__(self):
        super().__init__()
        self.cpu_ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tree_leaves(out)):
            self.cpu_ops.append(str(func))
        return out


def _meta_model(kind: str) -> MedVLM:
    torch.manual_seed(0)
    lm = build_language_model(40, LanguageConfig(hidden=16, layers=2, heads=2))
    fusion = FusionConfig(kind=kind, num_queries=3, qformer_hidden=16, heads=2)
    return MedVLM(lm, fusion, d_vision=8).to("meta")


def test_the_watch_sees_a_tensor_created_without_a_device():
    with CPUTensorWatch() as watch:
        torch.ones(2, 3)
    assert watch.cpu_ops, "the check could not fail"


@pytest.mark.parametrize("kind", [*FUSIONS, BLIND])
def test_forward_backward_and_decoding_create_no_cpu_tensor(kind, monkeypatch):
    import transformers.masking_utils as mu

    # transformers reads the attention mask's values to decide whether it may skip building it
    # (a host sync a meta tensor cannot answer); as under torch.export, build it explicitly
    monkeypatch.setattr(mu, "is_tracing", lambda *args: True)
    model = _meta_model(kind)
    ids = torch.randint(4, 40, (2, 5), device="meta")
    mask = torch.ones(2, 5, dtype=torch.long, device="meta")
    feats = torch.randn(2, 4, 8, device="meta")
    with CPUTensorWatch() as watch:
        out = model(ids, mask, labels=ids, features=feats)
        out.loss.backward()
        new = model.greedy_tokens(ids, features=feats, max_new_tokens=3)
    assert watch.cpu_ops == []
    assert out.loss.device.type == "meta" and new.shape == (2, 3) and new.device.type == "meta"
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is None or g.device.type == "meta" for g in grads)


def test_autocast_follows_the_parameters_device():
    cpu = torch.nn.Parameter(torch.zeros(2))
    meta = torch.nn.Parameter(torch.zeros(2, device="meta"))
    assert autocast_device_type([cpu]) == "cpu"
    assert autocast_device_type([meta]) == "meta"
    with pytest.raises(ValueError, match="one device type"):
        autocast_device_type([cpu, meta])
