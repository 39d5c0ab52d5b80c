"""The exercise studies run what the exercises ask and say in words what came out."""

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

from fieldnotes.robot import exercises  # noqa: E402
from fieldnotes.robot.control import FollowGains  # noqa: E402
from fieldnotes.robot.field import make_field  # noqa: E402
from fieldnotes.robot.mission import MissionConfig  # noqa: E402


def test_exercise_gains_change_only_what_the_exercise_says():
    base = FollowGains(speed_mps=0.4)
    g = exercises.exercise_gains(base)
    assert g["default"] == base
    assert (g["kp=3, kd=0"].kp, g["kp=3, kd=0"].kd, g["kp=3, kd=0"].ki) == (3.0, 0.0, base.ki)
    assert g["no look-ahead"].lookahead_m == 0 and g["no look-ahead"].kp == base.kp
    assert all(v.speed_mps == 0.4 for v in g.values())


class _Done:
    """A finished mission's scores, standing in for a MissionResult."""

    rows_completed, plants_hit, cross_track_rmse_m = 2, 1, 0.05


def test_gain_study_reuses_missions_already_run_and_checks_its_input():
    f = make_field(rows=1, plants_per_row=4)
    table = exercises.gain_study(
        f, None, MissionConfig(), {"a": FollowGains()}, done={"a": _Done()}
    )
    assert table.loc["a"].to_dict() == {
        "rows_completed": 2,
        "plants_hit": 1,
        "cross_track_rmse_m": 0.05,
    }
    with pytest.raises(ValueError, match="gains"):
        exercises.gain_study(f, None, MissionConfig(), {})
    with pytest.raises(TypeError, match="FollowGains"):
        exercises.gain_study(f, None, MissionConfig(), {"a": 1.2})


def test_lighting_study_scores_the_same_net_at_each_lighting():
    from fieldnotes.robot.classifier import train_classifier
    from fieldnotes.robot.plants import make_flower_dataset

    x, y = make_flower_dataset(200, seed=3, size=32)
    net, _ = train_classifier(x, y, epochs=1, seed=0)
    table = exercises.lighting_study(net, x, y, 60, seed=4, lightings=(1.0, 3.0), size=32)
    assert list(table.index) == [1.0, 3.0]
    assert set(table.columns) == {"cnn_accuracy", "ece", "baseline_accuracy"}
    assert ((table >= 0) & (table <= 1)).all().all()
    with pytest.raises(ValueError, match="lightings"):
        exercises.lighting_study(net, x, y, 60, seed=4, lightings=())


def test_verdicts_follow_the_numbers():
    assert "less sure" in exercises.calibration_verdict(0.1, 0.01)
    assert "confident ones" in exercises.calibration_verdict(0.1, 0.08)
    assert "no accuracy" in exercises.calibration_verdict(-0.01, 0.0)
    assert exercises.baseline_verdict(0.02, 0.1).startswith("a larger fall")
    assert exercises.baseline_verdict(0.1, 0.02).startswith("no larger")
    assert "puts some of them" in exercises.clearance_verdict(3, 0)
    assert "need not" in exercises.clearance_verdict(0, 0)


def test_gain_and_lookahead_verdicts():
    assert exercises.gain_verdict(0.5, 0.03, 0.6).startswith("makes things worse")
    assert "0.6 rad/s" in exercises.gain_verdict(0.03, 0.03, 0.6)
    assert exercises.gain_verdict(0.03, 0.03, 0.6).startswith("buys little")
    # a larger gain that does better is said so (3.27 cm -> 1.84 cm was read as "buys little")
    assert exercises.gain_verdict(0.0184, 0.0327, 0.6).startswith(
        "tracks the lane centre more tightly"
    )
    assert exercises.lookahead_verdict(0.09, 0.02) == "is what matters"
    assert "little difference" in exercises.lookahead_verdict(0.02, 0.02)
