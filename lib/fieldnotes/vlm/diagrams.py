"""Block diagrams of the three architectures (matplotlib boxes and arrows)."""

from __future__ import annotations

COLORS = {"vision": "#9ecae1", "fusion": "#fdae6b", "lm": "#a1d99b", "io": "#eeeeee"}


def _box(ax, x, y, w, h, text, kind):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=COLORS[kind], ec="black", lw=1)
    )
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def _arrow(ax, x0, y0, x1, y1):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "lw": 1})


def draw_architecture(kind: str, ax=None):
    """Draw the ``xattn``, ``qformer`` or ``linear`` VLM on ``ax`` (a new figure if None); returns the axes."""
    import matplotlib.pyplot as plt

    if kind not in ("xattn", "qformer", "linear"):
        raise ValueError(f"kind must be 'xattn', 'qformer' or 'linear', got {kind!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.axis("off")
    _box(ax, 0.1, 1.6, 1.2, 0.8, "scan\n64x64", "io")
    _box(ax, 1.7, 1.6, 1.6, 0.8, "vision encoder\n(frozen ViT)", "vision")
    _arrow(ax, 1.3, 2.0, 1.7, 2.0)
    if kind == "xattn":
        _box(ax, 0.1, 0.2, 1.2, 0.7, "question\ntokens", "io")
        for i in range(3):
            x = 4.0 + i * 1.9
            _box(ax, x, 0.2, 0.8, 0.7, f"gated\nxattn {i}", "fusion")
            _box(ax, x + 0.9, 0.2, 0.8, 0.7, f"Bloom\nlayer {i}", "lm")
            _arrow(ax, 2.5, 1.6, x + 0.4, 0.9)
        _arrow(ax, 1.3, 0.55, 4.0, 0.55)
        _box(ax, 8.6, 1.6, 1.3, 0.8, "answer", "io")
        _arrow(ax, 9.5, 0.9, 9.25, 1.6)
        ax.set_title("Flamingo-style gated cross-attention: tanh(gate) = 0 at start", fontsize=9)
        return ax
    if kind == "qformer":
        _box(ax, 3.7, 2.9, 1.6, 0.7, "learned\nqueries (8)", "fusion")
        _box(ax, 3.7, 1.6, 1.6, 0.8, "Q-Former\n(BLIP-2)", "fusion")
        _arrow(ax, 4.5, 2.9, 4.5, 2.4)
        _arrow(ax, 3.3, 2.0, 3.7, 2.0)
        _box(ax, 5.6, 1.6, 1.0, 0.8, "linear\nto LM", "fusion")
        _arrow(ax, 5.3, 2.0, 5.6, 2.0)
        title = "Q-Former: a fixed number of query tokens, prepended to the text"
    else:
        _box(ax, 3.7, 1.6, 2.9, 0.8, "MLP projector\n(every image token)", "fusion")
        _arrow(ax, 3.3, 2.0, 3.7, 2.0)
        title = "LLaVA-style projector: every image token becomes an LM token"
    _box(ax, 6.9, 1.6, 1.6, 0.8, "Bloom LM\n[image|question]", "lm")
    _arrow(ax, 6.6, 2.0, 6.9, 2.0)
    _box(ax, 5.0, 0.3, 1.4, 0.7, "question\ntokens", "io")
    _arrow(ax, 6.4, 0.65, 7.6, 1.6)
    _box(ax, 8.8, 1.6, 1.1, 0.8, "answer", "io")
    _arrow(ax, 8.5, 2.0, 8.8, 2.0)
    ax.set_title(title, fontsize=9)
    return ax


def draw_architectures(kinds: tuple[str, ...] = ("xattn", "qformer", "linear")):
    """The block diagrams of ``kinds`` stacked in one figure, one panel each; returns the figure."""
    import matplotlib.pyplot as plt

    if not kinds:
        raise ValueError("kinds is empty; expected one or more of 'xattn', 'qformer', 'linear'")
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 2.6 * len(kinds)), squeeze=False)
    for kind, ax in zip(kinds, axes[:, 0], strict=True):
        draw_architecture(kind, ax)
    fig.tight_layout()
    return fig
