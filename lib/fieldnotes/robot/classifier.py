"""The flower classifier: a small CNN that tells male (fertile) from female (male-sterile) flowers.

A four-block CNN (under 50 k parameters) trained on generated close-ups; evaluated with accuracy, a
confusion matrix and calibration (ECE); timed on one CPU core (a Raspberry Pi's budget); exported to
ONNX and checked against onnxruntime. A colour-histogram baseline shows how much of the task colour
alone solves. torch is imported inside the functions that need it; the row detector
(:mod:`fieldnotes.robot.row_detector`) and the motion layer never import this module.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CHECKPOINT_KIND = "fieldnotes.robot.FlowerNet"


# --------------------------------------------------------------------------------------------
# the classifier
# --------------------------------------------------------------------------------------------
MAX_WIDTH = 512
"""Most channels a conv block may have (the book's net has at most 64)."""
IMAGE_SIZES = (16, 512)
"""Smallest and largest input size (pixels): four 2× poolings need 16, a close-up is no bigger."""


@dataclass
class NetConfig:
    """Widths of the four conv blocks (channels, 1–MAX_WIDTH) and the input size (pixels, within
    IMAGE_SIZES); anything else is a ValueError, so a checkpoint cannot ask for an absurd network."""

    widths: tuple[int, int, int, int] = (16, 32, 48, 64)
    image_size: int = 64

    def __post_init__(self) -> None:
        widths = tuple(self.widths)
        if len(widths) != 4 or not all(_is_int(w) and 1 <= w <= MAX_WIDTH for w in widths):
            raise ValueError(f"widths must be four ints in [1, {MAX_WIDTH}], got {self.widths!r}")
        lo, hi = IMAGE_SIZES
        if not (_is_int(self.image_size) and lo <= self.image_size <= hi):
            raise ValueError(
                f"image_size must be an int in [{lo}, {hi}] px, got {self.image_size!r}"
            )
        self.widths = tuple(int(w) for w in widths)
        self.image_size = int(self.image_size)


def _is_int(value) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def build_net(config: NetConfig | None = None):
    """A small CNN: four conv-BN-ReLU-maxpool blocks, global average pooling, a 2-way linear head."""
    import torch.nn as nn

    cfg = config or NetConfig()
    layers, cin = [], 3
    for w in cfg.widths:
        layers += [
            nn.Conv2d(cin, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 2)]
    net = nn.Sequential(*layers)
    net.image_size = cfg.image_size  # the input size it was built for, saved with it
    return net


def net_config(net) -> NetConfig:
    """The :class:`NetConfig` a network built by :func:`build_net` has: its conv widths as built
    and the input size it was built for."""
    import torch.nn as nn

    widths = tuple(m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d))
    return NetConfig(widths=widths, image_size=getattr(net, "image_size", NetConfig.image_size))


def count_parameters(net) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))


def to_array(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, 3) → float32 array (N, 3, H, W) centred on 0: the network's input,
    in NumPy alone (what onnxruntime takes on a Pi without torch)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 of shape (N, H, W, 3), got {images.dtype} {images.shape}"
        )
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
    return x / np.float32(255.0) - np.float32(0.5)


def to_tensor(images: np.ndarray):
    """uint8 images (N, H, W, 3) → float tensor (N, 3, H, W) centred on 0 (:func:`to_array`)."""
    import torch

    return torch.from_numpy(to_array(images))


@dataclass
class TrainLog:
    """Loss per epoch and the training accuracy after each epoch."""

    loss: list[float]
    train_accuracy: list[float]


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = 6,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    config: NetConfig | None = None,
    progress: bool = False,
    threads: int | None = 1,
):
    """Train a fresh CNN with AdamW and flip/rotate augmentation; returns (net in eval mode, log).

    ``threads`` sets torch's CPU threads for the training (None keeps torch's setting); one thread
    is the default because on a small shared machine more threads mostly wait for each other.
    """
    import torch
    import torch.nn.functional as F

    if threads is not None:
        threads_before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return train_classifier(
                images, labels, epochs, batch_size, lr, seed, config, progress, threads=None
            )
        finally:
            torch.set_num_threads(threads_before)

    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"images and labels differ in length: {len(images)} vs {len(labels)}")
    if epochs <= 0 or batch_size <= 0:
        raise ValueError(f"epochs and batch_size must be > 0, got {epochs}, {batch_size}")
    cfg = config or NetConfig(image_size=int(images.shape[1]))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = build_net(cfg)
    x_all, y_all = to_tensor(images), torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(x_all) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    log = TrainLog([], [])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="training")
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x_all), generator=gen)
        total, correct, seen = 0.0, 0, 0
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = x_all[idx], y_all[idx]
            k = int(torch.randint(0, 4, (1,), generator=gen))
            xb = torch.rot90(xb, k, dims=(2, 3))
            if int(torch.randint(0, 2, (1,), generator=gen)):
                xb = torch.flip(xb, dims=(3,))
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            seen += len(idx)
            if bar is not None:
                bar.update(1)
        log.loss.append(total / seen)
        log.train_accuracy.append(correct / seen)
    if bar is not None:
        bar.close()
    net.eval()
    return net, log


def predict_proba(net, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probability of class 1 (male) for each image, shape (N,)."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            logits = net(to_tensor(images[i : i + batch_size]))
            out.append(torch.softmax(logits, dim=1)[:, 1].numpy())
    return np.concatenate(out) if out else np.zeros(0)


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int = 2) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    truth, pred = np.asarray(truth, np.int64), np.asarray(pred, np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f"truth and pred differ in shape: {truth.shape} vs {pred.shape}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (truth, pred), 1)
    return cm


def expected_calibration_error(
    prob_male: np.ndarray, truth: np.ndarray, bins: int = 15
) -> tuple[float, np.ndarray]:
    """ECE of the predicted class's confidence over ``bins`` equal-width bins of [0, 1] (Guo et
    al.'s 15 unless given; with two classes the confidence is at least one half, so the bins below
    it stay empty); returns (ece, table).

    The table has one row per bin: lower edge, mean confidence, accuracy, count.
    """
    prob_male, truth = np.asarray(prob_male, float), np.asarray(truth)
    if len(prob_male) != len(truth):
        raise ValueError(f"prob_male has {len(prob_male)} entries, truth {len(truth)}")
    pred = (prob_male >= 0.5).astype(int)
    conf = np.where(pred == 1, prob_male, 1 - prob_male)
    correct = (pred == truth).astype(float)
    if not len(truth):
        return float("nan"), np.zeros((0, 4))
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    table = np.zeros((bins, 4))
    ece = 0.0
    for b in range(bins):
        m = idx == b
        table[b] = (
            edges[b],
            conf[m].mean() if m.any() else np.nan,
            correct[m].mean() if m.any() else np.nan,
            m.sum(),
        )
        if m.any():
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(ece), table


def latency_ms(net, image_size: int = 64, repeats: int = 200, threads: int = 1) -> float:
    """Median time (ms) to classify one image on ``threads`` CPU threads with torch."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.zeros(1, 3, image_size, image_size)
        times = []
        with torch.inference_mode():
            for _ in range(10):
                net(x)
            for _ in range(repeats):
                t = time.perf_counter()
                net(x)
                times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(old)
    return float(np.median(times) * 1e3)


def save_classifier(net, path: str | Path, config: NetConfig | None = None) -> Path:
    """Save weights as safetensors with metadata that marks the file as ours and records the
    network's own :class:`NetConfig` (:func:`net_config`); a ``config`` given must agree with it."""
    from safetensors.torch import save_file

    cfg = net_config(net)
    if config is not None and config != cfg:
        raise ValueError(f"config {config} does not describe this network, which is {cfg}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(
        tensors, str(path), metadata={"kind": CHECKPOINT_KIND, "config": json.dumps(asdict(cfg))}
    )
    return path


def load_classifier(path: str | Path):
    """Load a checkpoint written by :func:`save_classifier`; anything else raises ValueError."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"classifier {str(path)!r} does not exist; expected a .safetensors file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # not safetensors at all
        raise ValueError(
            f"classifier {str(path)!r} is not a safetensors checkpoint written by fieldnotes.robot "
            f"({type(exc).__name__})"
        ) from None
    if meta.get("kind") != CHECKPOINT_KIND:
        raise ValueError(
            f"classifier {str(path)!r} is not a fieldnotes.robot checkpoint "
            f"(metadata kind={meta.get('kind')!r}, expected {CHECKPOINT_KIND!r})"
        )
    try:
        raw = json.loads(meta["config"])
        cfg = NetConfig(widths=tuple(raw["widths"]), image_size=raw["image_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"classifier {str(path)!r} has unusable config metadata "
            f"{meta.get('config')!r}: {type(exc).__name__}: {exc}"
        ) from None
    net = build_net(cfg)
    state = load_file(str(path))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"classifier {str(path)!r} does not match its config: {exc}") from None
    net.eval()
    return net, cfg


def export_onnx(net, path: str | Path, image_size: int = 64) -> Path:
    """Export the CNN to ONNX (batch dimension dynamic); returns the path."""
    import warnings

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, 3, image_size, image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x,),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    return path


def onnx_predict_proba(path: str | Path, images: np.ndarray, threads: int = 1) -> np.ndarray:
    """Probability of class 1 for each image from onnxruntime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"image": to_array(images)})[0]
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p[:, 1] / p.sum(axis=1)


def onnx_latency_ms(path: str | Path, image_size: int = 64, repeats: int = 200) -> float:
    """Median time (ms) to classify one image with onnxruntime on one thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, image_size, image_size), np.float32)
    for _ in range(10):
        sess.run(None, {"image": x})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {"image": x})
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


# --------------------------------------------------------------------------------------------
# the colour-histogram baseline
# --------------------------------------------------------------------------------------------
def color_histograms(images: np.ndarray, bins: int = 6) -> np.ndarray:
    """Joint RGB histogram (bins³ cells, fractions of the image) per image, shape (N, bins³)."""
    images = np.asarray(images)
    q = (images.astype(np.int64) * bins) // 256
    code = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    n = len(images)
    flat = code.reshape(n, -1) + (np.arange(n) * bins**3)[:, None]
    h = np.bincount(flat.ravel(), minlength=n * bins**3).reshape(n, bins**3)
    return h / code[0].size


def histogram_baseline(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    bins: int = 6,
    l2: float = 1e-3,
) -> np.ndarray:
    """Logistic regression on colour histograms (sqrt-scaled): predicted class per test image."""
    import torch

    def feats(imgs):
        return torch.from_numpy(np.sqrt(color_histograms(imgs, bins))).float()

    xtr, xte = feats(train_images), feats(test_images)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ytr = torch.from_numpy(np.asarray(train_labels, np.int64))
    lin = torch.nn.Linear(xtr.shape[1], 2)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xtr), ytr) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return lin(xte).argmax(1).numpy()
