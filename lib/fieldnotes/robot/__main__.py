"""``python -m fieldnotes.robot``: train (or load) the flower classifier and run a whole mission.

The field has ``--off-types`` (default 0.05, as in the book) fertile off-types in its female rows.
Writes ``DIR/mission.json`` (rows_completed, plants, marking_accuracy, plants_hit, crops, crop_accuracy,
cross_track_rmse_m, localisation_rmse_m, mark_precision, mark_recall, label_accuracy, sim_seconds,
wall_seconds, ...) and ``DIR/field.png`` (the marked map).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

OFF_TYPES = 0.05
"""Default ``--off-types``: the book's mission and ``benchmarks/robot_bench.py`` use 0.05."""

MAX_SEED = 2**31 - 1
"""Largest ``--seed``: the training data use ``seed + 1000`` and NumPy seeds must stay below 2**32."""


def _number(text: str, kind: type, low: float, low_inclusive: bool, unit: str = ""):
    """Parse ``text`` as a finite ``kind`` at or above (or strictly above) ``low``; argparse turns
    the ArgumentTypeError into exit status 2 with the flag's name."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
    ok = math.isfinite(value) and (value >= low if low_inclusive else value > low)
    if not ok:
        bound = ">=" if low_inclusive else ">"
        raise argparse.ArgumentTypeError(
            f"must be a finite number {bound} {low:g}{unit}, got {text!r}"
        )
    return value


def positive_int(text: str) -> int:
    """An int > 0."""
    return _number(text, int, 0, False)


def seed_int(text: str) -> int:
    """An int in [0, MAX_SEED]."""
    value = _number(text, int, 0, True)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_SEED}, got {text!r}")
    return value


def positive_metres(text: str) -> float:
    """A finite float > 0 (m)."""
    return _number(text, float, 0.0, False, " m")


def positive_speed(text: str) -> float:
    """A finite float > 0 (m/s)."""
    return _number(text, float, 0.0, False, " m/s")


def lighting_scale(text: str) -> float:
    """A finite float >= 0."""
    return _number(text, float, 0.0, True)


def off_type_fraction(text: str) -> float:
    """A finite float in [0, 1): the fraction of female plants that are fertile off-types."""
    value = _number(text, float, 0.0, True)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    ap = argparse.ArgumentParser(
        prog="python -m fieldnotes.robot",
        description="Run a simulated field-robot mission over a generated rapeseed breeding plot.",
    )
    ap.add_argument("--rows", type=positive_int, default=6, help="number of rows (default 6)")
    ap.add_argument(
        "--plants-per-row", type=positive_int, default=20, help="planting positions per row"
    )
    ap.add_argument(
        "--row-spacing", type=positive_metres, default=1.2, help="distance between rows (m)"
    )
    ap.add_argument("--pattern", default="2:1", help="female:male rows, repeated (default 2:1)")
    ap.add_argument(
        "--off-types",
        type=off_type_fraction,
        default=OFF_TYPES,
        help=f"fraction of female plants that are fertile off-types (default {OFF_TYPES}, the book's)",
    )
    ap.add_argument(
        "--seed", type=seed_int, default=0, help="seed for the field and the training data"
    )
    ap.add_argument("--out", default="robot-mission", help="output folder")
    ap.add_argument(
        "--classifier",
        default=None,
        help="a .safetensors checkpoint from fieldnotes.robot (skips training)",
    )
    ap.add_argument(
        "--train-images", type=positive_int, default=4000, help="training images if training"
    )
    ap.add_argument("--epochs", type=positive_int, default=6, help="training epochs if training")
    ap.add_argument(
        "--lighting", type=lighting_scale, default=1.0, help="lighting variation (1 = book)"
    )
    ap.add_argument(
        "--speed", type=positive_speed, default=0.6, help="cruise speed in the rows (m/s)"
    )
    ap.add_argument(
        "--sensor-noise",
        choices=["none", "default", "high"],
        default="default",
        help="camera noise and blur, wheel slip, encoder resolution, gyro bias (default: the book's)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the mission, write the outputs; returns the exit status."""
    ap = build_parser()
    args = ap.parse_args(argv)
    from fieldnotes import seed_everything
    from fieldnotes.robot.classifier import load_classifier, save_classifier, train_classifier
    from fieldnotes.robot.control import FollowGains
    from fieldnotes.robot.drive import HUSKY_SIM
    from fieldnotes.robot.field import make_field
    from fieldnotes.robot.mission import MissionConfig, run_mission, write_mission
    from fieldnotes.robot.sensing import noise_preset

    top = HUSKY_SIM.max_speed_mps
    if args.speed > top:
        ap.error(f"--speed must be at most the Husky's top wheel speed {top} m/s, got {args.speed}")
    out = Path(args.out)
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                ap.error(f"--out {str(out)!r}: {str(folder)!r} is a file; expected a folder")
            break
    try:
        field_ = make_field(
            rows=args.rows,
            plants_per_row=args.plants_per_row,
            row_spacing=args.row_spacing,
            pattern=args.pattern,
            seed=args.seed,
            off_type_fraction=args.off_types,
        )
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        for name in ("pattern", "row_spacing", "rows", "plants_per_row"):
            msg = msg.replace(f"{name} ", f"--{name.replace('_', '-')} ", 1)
        ap.error(msg)
    seed_everything(args.seed)
    if args.classifier:
        try:
            net, _ = load_classifier(args.classifier)
        except ValueError as exc:
            ap.error(f"--classifier: {exc}")
    else:
        from fieldnotes.robot.plants import make_flower_dataset

        images, labels = make_flower_dataset(
            args.train_images, seed=args.seed + 1000, lighting=args.lighting
        )
        net, _ = train_classifier(
            images, labels, epochs=args.epochs, seed=args.seed, progress=not args.quiet
        )
        save_classifier(net, out / "classifier.safetensors")
    cfg = MissionConfig(
        lighting=args.lighting,
        gains=FollowGains(speed_mps=args.speed),
        noise=noise_preset(args.sensor_noise),
        sensor_seed=args.seed,
    )
    result = run_mission(field_, net, cfg, progress=not args.quiet)
    write_mission(field_, result, out)
    json.dump(result.summary(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
