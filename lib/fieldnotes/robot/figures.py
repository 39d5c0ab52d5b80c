"""The chapter's pictures: the field map (marked or not), a flower gallery, row detection step by
step, and an animation of the mission that plays in a static page."""

from __future__ import annotations

import math
import re

import numpy as np

from fieldnotes.robot.field import LABELS, Field

COLOURS = {0: "#c2185b", 1: "#1565c0"}  # female magenta, male blue
MARKERS = {0: "o", 1: "^"}


def plot_field(field_: Field, result=None, ax=None, upto: int | None = None):
    """Top-down map (m): rows by line, weeds, and — given a mission ``result`` — the marks, errors,
    plants hit and the path (up to trajectory index ``upto``)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    s = field_.row_spacing_m
    for r in range(field_.n_rows):
        ax.axvspan(r * s - 0.12, r * s + 0.12, color=COLOURS[field_.lines[r]], alpha=0.08, lw=0)
    if len(field_.weed_xy):
        ax.scatter(*field_.weed_xy.T, s=8, c="#7cb342", marker="*", label="weed", zorder=2)
    xy, truth = field_.plant_xy, field_.plant_label
    if result is None:
        for c in (0, 1):
            m = truth == c
            ax.scatter(
                *xy[m].T, s=22, c=COLOURS[c], marker=MARKERS[c], label=f"{LABELS[c]} line", zorder=3
            )
    else:
        traj = result.trajectory if upto is None else result.trajectory[: upto + 1]
        t_now = traj[-1, 0] if len(traj) else np.inf
        pred = result.predicted.copy()
        if upto is not None:  # only the marks made so far
            y_seen = _marked_by(field_, result, t_now)
            pred[~y_seen] = -1
        unmarked = pred < 0
        ax.scatter(
            *xy[unmarked].T,
            s=18,
            facecolors="none",
            edgecolors="0.55",
            label="not marked",
            zorder=3,
        )
        for c in (0, 1):
            m = pred == c
            ax.scatter(
                *xy[m].T,
                s=22,
                c=COLOURS[c],
                marker=MARKERS[c],
                label=f"marked {LABELS[c]}",
                zorder=3,
            )
        wrong = (pred >= 0) & (pred != truth)
        if wrong.any():
            ax.scatter(
                *xy[wrong].T,
                s=110,
                facecolors="none",
                edgecolors="red",
                lw=1.5,
                label="wrong mark",
                zorder=4,
            )
        if result.hit.any() and upto is None:
            ax.scatter(*xy[result.hit].T, s=60, c="k", marker="x", label="plant hit", zorder=5)
        if len(traj):
            ax.plot(traj[:, 1], traj[:, 2], color="0.3", lw=1, label="robot path", zorder=1)
    ax.set_xlabel("x across the rows (m)")
    ax.set_ylabel("y along the rows (m)")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return ax


def _marked_by(field_: Field, result, t: float) -> np.ndarray:
    """Plants already marked at time ``t``: the robot has driven past them in their lane (its side
    camera looks straight across) and a mark was matched to them."""
    traj = result.trajectory[result.trajectory[:, 0] <= t]
    seen = np.zeros(field_.n_plants, bool)
    for lane in np.unique(traj[:, 4]).astype(int):
        if lane < 0:
            continue
        part = traj[traj[:, 4] == lane]
        lo, hi = part[:, 2].min(), part[:, 2].max()
        sel = (
            (field_.plant_row == lane)
            & (field_.plant_xy[:, 1] >= lo)
            & (field_.plant_xy[:, 1] <= hi)
        )
        seen |= sel
    return seen & (result.predicted >= 0)


def draw_robot(ax, pose, length: float = 0.99, width: float = 0.69, **kw):
    """The robot's footprint as a rectangle with a nose line at ``pose`` (x m, y m, yaw rad)."""
    from matplotlib.patches import Polygon

    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    corners = np.array(
        [
            [length / 2, width / 2],
            [length / 2, -width / 2],
            [-length / 2, -width / 2],
            [-length / 2, width / 2],
        ]
    )
    pts = np.stack(
        [x + c * corners[:, 0] - s * corners[:, 1], y + s * corners[:, 0] + c * corners[:, 1]],
        axis=1,
    )
    patch = Polygon(
        pts, closed=True, fc=kw.pop("fc", "#fbc02d"), ec="k", alpha=0.85, zorder=6, **kw
    )
    ax.add_patch(patch)
    (nose,) = ax.plot([x, x + c * length / 2], [y, y + s * length / 2], "k-", lw=1.5, zorder=7)
    return patch, nose


def plot_gallery(images: np.ndarray, labels: np.ndarray, per_class: int = 6, title: str = ""):
    """Two rows of close-ups: female (male-sterile) flowers above, male (fertile) below."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, per_class, figsize=(1.6 * per_class, 3.6))
    for row, c in enumerate((0, 1)):
        idx = np.flatnonzero(labels == c)[:per_class]
        for k, ax in enumerate(axes[row]):
            ax.axis("off")
            if k < len(idx):
                ax.imshow(images[idx[k]])
        axes[row, 0].set_title(
            f"{LABELS[c]} line ({'male-sterile' if c == 0 else 'fertile'})", loc="left", fontsize=9
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_row_steps(rgb: np.ndarray, camera, row_spacing: float):
    """Row detection on one frame: the image, excess green, the Otsu mask, and on the ground (robot
    frame, metres) the plant pixels, the points where plants meet the soil, the fitted rows and the
    lane centre."""
    import matplotlib.pyplot as plt

    from fieldnotes.robot.row_detector import (
        detect_rows,
        excess_green,
        pixel_to_ground,
        plant_base_points,
        plant_mask,
    )

    exg = excess_green(rgb)
    mask, thr = plant_mask(rgb)
    est = detect_rows(rgb, camera, row_spacing)
    rr, cc = np.nonzero(mask)
    gx, gy, ok = pixel_to_ground(rr, cc, camera)
    bx, by = plant_base_points(mask, camera)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    axes[0].imshow(rgb)
    axes[0].set_title("1. camera frame")
    im = axes[1].imshow(exg, cmap="RdYlGn", vmin=-0.5, vmax=0.8)
    fig.colorbar(im, ax=axes[1], fraction=0.046, label="2G − R − B")
    axes[1].set_title("2. excess green")
    axes[2].imshow(mask, cmap="gray")
    axes[2].set_title(f"3. Otsu mask (ExG > {thr:.2f})")
    for ax in axes[:3]:
        ax.set_xlabel("column (px)")
        ax.set_ylabel("row (px)")
    ax = axes[3]
    sel = ok & (gx > 0) & (gx < 4)
    ax.scatter(-gy[sel], gx[sel], s=1, c="#a5d6a7", label="plant pixels")
    ax.scatter(-by, bx, s=4, c="#1b5e20", label="where plants meet the soil")
    xs = np.linspace(0, 4, 20)
    for line, name in ((est.left, "left row"), (est.right, "right row")):
        if line is not None:
            ax.plot(-(line[0] + line[1] * xs), xs, lw=2, label=name)
    if est.ok:
        c_off = -est.offset_m / math.cos(est.heading_rad)
        c_head = -math.tan(est.heading_rad)
        ax.plot(-(c_off + c_head * xs), xs, "k--", lw=1.5, label="lane centre")
    ax.plot(0, 0, "ks", ms=8, label="robot")
    ax.set_xlim(-row_spacing * 1.2, row_spacing * 1.2)
    ax.set_ylim(0, 4)
    ax.set_xlabel("right of the robot (m)")
    ax.set_ylabel("ahead of the robot (m)")
    ax.set_title(f"4. offset {est.offset_m:+.3f} m, heading {math.degrees(est.heading_rad):+.1f}°")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig, est


def plot_localisation(field_: Field, result, ax=None):
    """The robot's path as the simulator's truth has it and as its own EKF estimated it (metres),
    over the plants; the title gives the localisation RMSE."""
    import matplotlib.pyplot as plt

    traj = result.trajectory
    if traj.ndim != 2 or traj.shape[1] < 8:
        raise ValueError(
            f"result.trajectory must have 8 columns (truth and estimate), got {traj.shape}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(*field_.plant_xy.T, s=6, c="#9e9e9e", label="plants")
    ax.plot(traj[:, 1], traj[:, 2], color="0.2", lw=1.2, label="true path (simulator)")
    ax.plot(traj[:, 5], traj[:, 6], color="#d84315", lw=1.0, ls="--", label="estimated path (EKF)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal")
    ax.set_title(f"localisation RMSE {result.localisation_rmse_m:.2f} m")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def mission_animation(field_: Field, result, frames: int = 60, fps: int = 8, dpi: int = 60):
    """A FuncAnimation of the mission: the map with the robot and its marks, and the camera view.

    Embed with ``anim.to_jshtml()`` (frames as JPEG keep the page small).
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    traj = result.trajectory
    if len(traj) < 2:
        raise ValueError("result has no trajectory to animate")
    times = np.linspace(traj[0, 0], traj[-1, 0], frames)
    idx = np.searchsorted(traj[:, 0], times).clip(0, len(traj) - 1)
    cam_times = np.array([f[0] for f in result.frames]) if result.frames else np.zeros(0)
    has_cam = len(cam_times) > 0
    fig, axes = plt.subplots(
        1,
        2 if has_cam else 1,
        figsize=(8.5, 5.2) if has_cam else (5.5, 5.2),
        dpi=dpi,
        gridspec_kw={"width_ratios": [1.1, 1]} if has_cam else None,
    )
    axes = np.atleast_1d(axes)

    def draw(k):
        ax = axes[0]
        ax.clear()
        plot_field(field_, result, ax=ax, upto=int(idx[k]))
        ax.get_legend().remove()
        draw_robot(ax, traj[idx[k], 1:4])
        ax.set_title(f"t = {traj[idx[k], 0]:5.1f} s (simulated)", fontsize=9)
        ax.set_xlim(-field_.row_spacing_m * 1.2, field_.row_spacing_m * (field_.n_rows - 0.2))
        ax.set_ylim(-2.2, field_.row_length_m + 2.2)
        if has_cam:
            j = int(
                np.clip(
                    np.searchsorted(cam_times, times[k], side="right") - 1, 0, len(cam_times) - 1
                )
            )
            t_cam, rgb, est = result.frames[j]
            axc = axes[1]
            axc.clear()
            axc.imshow(rgb)
            axc.set_xticks([])
            axc.set_yticks([])
            txt = (
                f"offset {est.offset_m:+.2f} m, heading {math.degrees(est.heading_rad):+.0f}°"
                if est.ok
                else "no rows in view"
            )
            axc.set_title(f"camera at t = {t_cam:.1f} s\n{txt}", fontsize=9)
        return []

    fig.tight_layout()
    anim = FuncAnimation(fig, draw, frames=frames, interval=1000 / fps, blit=False)
    plt.close(fig)
    return anim


#: matplotlib's player draws its buttons with Font Awesome from a CDN; the book makes no request
#: off the machine, so the link goes and each icon becomes a plain Unicode glyph.
_FONT_AWESOME_LINK = re.compile(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">')
_ICONS = {
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-fast-backward": "\u23ee",
    "fa fa-fast-forward": "\u23ed",
    "fa fa-step-backward": "|\u25c0",
    "fa fa-step-forward": "\u25b6|",
    "fa fa-pause": "\u23f8",
    "fa fa-play": "\u25b6",
    "fa fa-minus": "\u2212",
    "fa fa-plus": "+",
}


def animation_html(anim, fps: int = 8, frame_format: str = "jpeg") -> str:
    """The animation as self-contained HTML/JS (frames embedded, JPEG by default to stay small).

    Nothing in it loads from the network: matplotlib's Font Awesome link is removed and the
    player's icons are Unicode glyphs.
    """
    import matplotlib.pyplot as plt

    with plt.rc_context({"animation.frame_format": frame_format, "animation.embed_limit": 30}):
        html = anim.to_jshtml(fps=fps, default_mode="once")
    html = _FONT_AWESOME_LINK.sub("", html)
    for cls, glyph in _ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', glyph)
    return html


def plot_paths(paths: dict, title: str = ""):
    """Top-down paths (m) of the same program on several robots: ``{label: (N, 3) poses}``, with
    each path's start marked, on equal axes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for label, poses in paths.items():
        poses = np.asarray(poses)
        (line,) = ax.plot(poses[:, 0], poses[:, 1], label=label)
        ax.plot(poses[0, 0], poses[0, 1], "o", color=line.get_color(), ms=5)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_training(log):
    """Training loss (nats) and training error rate per epoch on one log-scaled axis."""
    import matplotlib.pyplot as plt

    epochs = range(1, len(log.loss) + 1)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(epochs, log.loss, "o-", label="training loss")
    ax.plot(epochs, [1 - a for a in log.train_accuracy], "s--", label="training error")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats) / error rate")
    ax.set_yscale("log")
    ax.legend()
    return fig


def plot_confusion(cm: np.ndarray, title: str = "confusion matrix (test images)"):
    """A 2 × 2 confusion matrix (counts of images) with the count written in each cell."""
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    if cm.shape != (2, 2):
        raise ValueError(f"cm must be a 2 × 2 matrix of counts, got shape {cm.shape}")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            dark = cm[i, j] > cm.max() / 2
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=14,
                color="white" if dark else "black",
            )
    ax.set_xticks([0, 1], [f"predicted {n}" for n in LABELS])
    ax.set_yticks([0, 1], [f"true {n}" for n in LABELS])
    ax.set_title(title)
    return fig


def plot_calibration(reliability: np.ndarray, ece: float):
    """Reliability diagram: accuracy against mean confidence per filled bin (the table from
    ``classifier.expected_calibration_error``), beside the diagonal of perfect calibration."""
    import matplotlib.pyplot as plt

    reliability = np.asarray(reliability)
    filled = reliability[:, 3] > 0
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0.5, 1], [0.5, 1], "k:", label="perfect calibration")
    ax.plot(reliability[filled, 1], reliability[filled, 2], "o-", label="CNN")
    ax.set_xlabel("confidence of the predicted class")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title(f"calibration: ECE = {ece:.3f}")
    ax.legend()
    return fig
