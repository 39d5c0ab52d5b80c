"""``python -m fieldnotes.robot``: train (or load) the flower classifier and run a whole mission.

Writes ``DIR/mission.json`` (rows_completed, plants, marking_accuracy, plants_hit,
cross_track_rmse_m, sim_seconds, wall_seconds, ...) and ``DIR/field.png`` (the marked map).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    ap = argparse.ArgumentParser(
        prog="python -m fieldnotes.robot",
        description="Run a simulated field-robot mission over a generated rapeseed breeding plot.",
    )
    ap.add_argument("--rows", type=int, default=6, help="number of rows (default 6)")
    ap.add_argument("--plants-per-row", type=int, default=20, help="planting positions per row")
    ap.add_argument("--row-spacing", type=float, default=1.2, help="distance between rows (m)")
    ap.add_argument("--pattern", default="2:1", help="female:male rows, repeated (default 2:1)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the field and the training data")
    ap.add_argument("--out", default="robot-mission", help="output folder")
    ap.add_argument(
        "--classifier",
        default=None,
        help="a .safetensors checkpoint from fieldnotes.robot (skips training)",
    )
    ap.add_argument("--train-images", type=int, default=4000, help="training images if training")
    ap.add_argument("--epochs", type=int, default=6, help="training epochs if training")
    ap.add_argument("--lighting", type=float, default=1.0, help="lighting variation (1 = book)")
    ap.add_argument("--speed", type=float, default=0.6, help="cruise speed in the rows (m/s)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the mission, write the outputs; returns the exit status."""
    ap = build_parser()
    args = ap.parse_args(argv)
    from fieldnotes import seed_everything
    from fieldnotes.robot.control import FollowGains
    from fieldnotes.robot.field import make_field
    from fieldnotes.robot.mission import MissionConfig, run_mission, write_mission
    from fieldnotes.robot.vision import load_classifier, save_classifier, train_classifier

    if args.rows <= 0:
        ap.error(f"--rows must be > 0, got {args.rows}")
    if args.speed <= 0:
        ap.error(f"--speed must be > 0 m/s, got {args.speed}")
    try:
        field_ = make_field(
            rows=args.rows,
            plants_per_row=args.plants_per_row,
            row_spacing=args.row_spacing,
            pattern=args.pattern,
            seed=args.seed,
        )
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        for name in ("pattern", "row_spacing", "rows", "plants_per_row"):
            msg = msg.replace(f"{name} ", f"--{name.replace('_', '-')} ", 1)
        ap.error(msg)
    out = Path(args.out)
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
    cfg = MissionConfig(lighting=args.lighting, gains=FollowGains(speed_mps=args.speed))
    result = run_mission(field_, net, cfg, progress=not args.quiet)
    write_mission(field_, result, out)
    json.dump(result.summary(), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
