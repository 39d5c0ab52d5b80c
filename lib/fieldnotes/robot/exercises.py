"""The chapter's exercises, answered by running them: the PID gains, a narrower plot, harder light.

Each study returns a DataFrame the notebook glues into its solutions, so an answer is always the
one this run's parameters give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from fieldnotes.robot.control import FollowGains
from fieldnotes.robot.field import Field
from fieldnotes.robot.mission import MissionConfig, MissionResult, run_mission


def exercise_gains(base: FollowGains) -> dict[str, FollowGains]:
    """The gain settings of exercise 1, each a change of ``base`` (which keeps its speed)."""
    return {
        "default": base,
        "kp=3, kd=0": replace(base, kp=3.0, kd=0.0),
        "kp=0.4": replace(base, kp=0.4),
        "kp=10": replace(base, kp=10.0),
        "no look-ahead": replace(base, lookahead_m=0.0),
    }


def mission_scores(result: MissionResult) -> dict:
    """The row-following scores of one mission: rows completed, plants hit, cross-track RMS (m)."""
    return {
        "rows_completed": int(result.rows_completed),
        "plants_hit": int(result.plants_hit),
        "cross_track_rmse_m": float(result.cross_track_rmse_m),
    }


def gain_study(
    field_: Field,
    classifier,
    config: MissionConfig,
    gains: Mapping[str, FollowGains],
    done: Mapping[str, MissionResult] | None = None,
):
    """One mission on ``field_`` per named gain setting (``done`` holds missions already run);
    a DataFrame indexed by name with each mission's :func:`mission_scores`."""
    import pandas as pd

    if not gains:
        raise ValueError("gains is empty; name at least one FollowGains setting")
    done = dict(done or {})
    rows = {}
    for name, g in gains.items():
        if not isinstance(g, FollowGains):
            raise TypeError(f"gains[{name!r}] must be a FollowGains, got {type(g).__name__}")
        result = done.get(name) or run_mission(
            field_, classifier, replace(config, gains=g, keep_frames=0)
        )
        rows[name] = mission_scores(result)
    return pd.DataFrame.from_dict(rows, orient="index")


def lighting_study(
    net,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    n_images: int,
    seed: int,
    lightings: Sequence[float],
    size: int = 64,
):
    """The same trained ``net`` and a colour-histogram baseline (fitted on the training images) on
    ``n_images`` test close-ups from ``seed`` at each lighting: a DataFrame indexed by lighting with
    the CNN's accuracy, its ECE and the baseline's accuracy (fractions)."""
    import pandas as pd

    from fieldnotes.robot.classifier import (
        expected_calibration_error,
        histogram_baseline,
        predict_proba,
    )
    from fieldnotes.robot.plants import make_flower_dataset

    if not lightings:
        raise ValueError("lightings is empty; give at least one lighting (1 = the book's)")
    sets = [
        make_flower_dataset(n_images, seed=seed, size=size, lighting=float(v)) for v in lightings
    ]
    # one baseline fit, scored on every lighting's images
    baseline = histogram_baseline(train_images, train_labels, np.concatenate([x for x, _ in sets]))
    rows = {}
    for k, (light, (x, y)) in enumerate(zip(lightings, sets, strict=True)):
        prob = predict_proba(net, x)
        ece, _ = expected_calibration_error(prob, y)
        rows[float(light)] = {
            "cnn_accuracy": float(((prob >= 0.5).astype(int) == y).mean()),
            "ece": float(ece),
            "baseline_accuracy": float((baseline[k * n_images : (k + 1) * n_images] == y).mean()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("lighting")


def calibration_verdict(accuracy_drop: float, ece_rise: float) -> str:
    """What a change of lighting did to calibration, in words, from the fall in accuracy and the
    rise in ECE (both fractions; positive = worse)."""
    if accuracy_drop <= 0:
        return "so the harder light cost this network no accuracy to be unsure about"
    if ece_rise < accuracy_drop / 2:
        return (
            "a far smaller move than the accuracy's, so the network becomes less sure as it "
            "becomes less right rather than confidently wrong"
        )
    return "about as large as the accuracy's fall, so many of the new mistakes are confident ones"


def baseline_verdict(cnn_drop: float, baseline_drop: float) -> str:
    """Whether harder light hurt the colour baseline more than the CNN, and why (drops are
    fractions of accuracy lost; positive = worse)."""
    if baseline_drop > cnn_drop:
        return (
            "a larger fall than the CNN's: colour is exactly what lighting changes, "
            "anther shape is not"
        )
    return (
        "no larger a fall than the CNN's: here the harder light blurred the shape cues as much "
        "as it shifted the colours"
    )


def clearance_verdict(hits_narrow: int, hits_wide: int) -> str:
    """What the narrower spacing did to the plants in the robot's path, in words."""
    if hits_narrow > hits_wide:
        return "with so little room, the plants' jitter alone puts some of them in the robot's path"
    return (
        "this field's jitter happened to leave the path clear, but with so little room it need not"
    )


def gain_verdict(rms_large_m: float, rms_default_m: float, max_turn_radps: float) -> str:
    """What a much larger proportional gain did to the cross-track RMS (m), in words: worse (over
    twice the default's RMS), better (under 0.8 of it) or about the same."""
    if rms_large_m > 2 * rms_default_m:
        return (
            f"makes things worse: the turn rate is capped at {max_turn_radps:.1f} rad/s, so a large "
            "gain turns every small error into a full-rate turn and the robot overshoots the lane "
            "centre"
        )
    if rms_large_m < 0.8 * rms_default_m:
        return (
            "tracks the lane centre more tightly on this field (a lower cross-track RMS), even with "
            f"the turn rate capped at {max_turn_radps:.1f} rad/s; whether it also hits plants or "
            "leaves rows unfinished is in the counts before it"
        )
    return (
        f"buys little: the turn rate is capped at {max_turn_radps:.1f} rad/s, and a larger gain "
        "only reaches the cap sooner"
    )


def lookahead_verdict(rms_without_m: float, rms_with_m: float) -> str:
    """Whether the look-ahead (heading) term mattered, from the cross-track RMS (m) without and
    with it."""
    if rms_without_m > 1.2 * rms_with_m:
        return "is what matters"
    return "made little difference on this field"
