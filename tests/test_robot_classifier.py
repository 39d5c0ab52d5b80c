"""The flower classifier: training, metrics, checkpoints, ONNX."""

import math

import numpy as np
import pytest

from fieldnotes.robot import classifier as V
from fieldnotes.robot.plants import make_flower_dataset


# ------------------------------------------------------------------ classifier
@pytest.fixture(scope="module")
def trained():
    x, y = make_flower_dataset(1600, seed=21)
    net, log = V.train_classifier(x, y, epochs=4, seed=0)
    xt, yt = make_flower_dataset(400, seed=22)  # a seed the training never saw
    return net, log, x, y, xt, yt


def test_parameter_count_matches_the_architecture():
    net = V.build_net(V.NetConfig(widths=(4, 8, 8, 8)))
    convs = 3 * 4 * 9 + 4 * 8 * 9 + 8 * 8 * 9 + 8 * 8 * 9
    bns = 2 * (4 + 8 + 8 + 8)
    head = 8 * 2 + 2
    assert V.count_parameters(net) == convs + bns + head


def test_to_tensor_rejects_floats_and_wrong_shapes():
    with pytest.raises(ValueError, match="images"):
        V.to_tensor(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="images"):
        V.to_tensor(np.zeros((8, 8, 3), np.uint8))


def test_training_learns_and_beats_the_colour_baseline(trained):
    net, log, x, y, xt, yt = trained
    assert log.loss[-1] < log.loss[0]
    acc = ((V.predict_proba(net, xt) >= 0.5) == yt).mean()
    base = (V.histogram_baseline(x, y, xt) == yt).mean()
    assert acc >= 0.85
    assert 0.55 < base < 0.99  # colour carries some signal but does not solve the task
    assert acc > base


def test_confusion_matrix_counts():
    cm = V.confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]))
    assert cm.tolist() == [[1, 1], [1, 2]]
    with pytest.raises(ValueError, match="shape"):
        V.confusion_matrix(np.array([0, 1]), np.array([0]))


def test_ece_zero_when_calibrated_and_exact_when_overconfident():
    rng = np.random.default_rng(0)
    # confidence 0.9 on class 1, right 90 % of the time → ECE ≈ 0
    truth = (rng.random(10000) < 0.9).astype(int)
    ece, _ = V.expected_calibration_error(np.full(10000, 0.9), truth)
    assert ece == pytest.approx(0.0, abs=0.01)
    # confidence 0.99, right half of the time → ECE = 0.49
    ece, table = V.expected_calibration_error(np.full(4, 0.99), np.array([1, 0, 1, 0]))
    assert ece == pytest.approx(0.49)
    assert table[:, 3].sum() == 4
    # Guo et al.'s 15 equal bins over [0, 1]: two classes leave those below one half empty
    assert len(table) == 15 and table[table[:, 0] < 0.46, 3].sum() == 0
    assert math.isnan(V.expected_calibration_error(np.zeros(0), np.zeros(0))[0])


def test_checkpoint_round_trip_and_foreign_files(trained, tmp_path):
    net, *_, xt, _ = trained
    path = V.save_classifier(net, tmp_path / "c.safetensors")
    net2, cfg = V.load_classifier(path)
    assert np.array_equal(V.predict_proba(net, xt[:32]), V.predict_proba(net2, xt[:32]))
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="classifier .*not a fieldnotes.robot checkpoint"):
        V.load_classifier(tmp_path / "other.safetensors")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(ValueError, match="classifier"):
        V.load_classifier(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="classifier"):
        V.load_classifier(tmp_path / "missing.safetensors")


def test_onnx_gives_the_same_predictions(trained, tmp_path):
    net, *_, xt, _ = trained
    path = V.export_onnx(net, tmp_path / "flower.onnx")
    p_torch = V.predict_proba(net, xt[:64])
    p_onnx = V.onnx_predict_proba(path, xt[:64])
    assert np.allclose(p_torch, p_onnx, atol=1e-4)
    assert np.array_equal(p_torch >= 0.5, p_onnx >= 0.5)


def test_latency_is_measured(trained):
    net = trained[0]
    assert V.latency_ms(net, repeats=5) > 0


@pytest.mark.parametrize(
    "config",
    [
        '{"widths": [16, 32, 48, 1000000000], "image_size": 64}',
        '{"widths": [16, 32, 48], "image_size": 64}',
        '{"widths": [16, 32, 48, 0], "image_size": 64}',
        '{"widths": [16, 32, 48, 64], "image_size": 100000}',
        '{"widths": [16, 32, 48, 64.5], "image_size": 64}',
        '{"widths": [16, 32, 48, 64]}',
        "not json",
    ],
)
def test_checkpoint_metadata_cannot_ask_for_an_absurd_network(tmp_path, config):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "big.safetensors"
    save_file(
        {"w": torch.zeros(2)}, str(path), metadata={"kind": V.CHECKPOINT_KIND, "config": config}
    )
    with pytest.raises(ValueError, match="classifier .*config"):
        V.load_classifier(path)


def test_net_config_bounds():
    with pytest.raises(ValueError, match="widths"):
        V.NetConfig(widths=(16, 32, 48, V.MAX_WIDTH + 1))
    with pytest.raises(ValueError, match="image_size"):
        V.NetConfig(image_size=8)
    assert V.NetConfig(widths=(1, 1, 1, V.MAX_WIDTH)).widths[-1] == V.MAX_WIDTH


def test_a_checkpoint_keeps_the_trained_networks_own_config(tmp_path):
    """save_classifier used to write the default NetConfig whatever network it was given."""
    cfg = V.NetConfig(widths=(8, 12, 20, 24), image_size=48)
    net = V.build_net(cfg)
    assert V.net_config(net) == cfg
    path = V.save_classifier(net, tmp_path / "small.safetensors")
    loaded, loaded_cfg = V.load_classifier(path)
    assert loaded_cfg == cfg
    x = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    net.eval()
    assert np.allclose(V.predict_proba(loaded, x), V.predict_proba(net, x), atol=1e-6)
    with pytest.raises(ValueError, match="does not describe this network"):
        V.save_classifier(net, tmp_path / "other.safetensors", V.NetConfig())
