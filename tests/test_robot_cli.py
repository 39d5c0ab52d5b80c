"""``python -m fieldnotes.robot``: bad input names the flag; a small run writes its outputs."""

import json
import subprocess
import sys

import pytest

from fieldnotes.robot.__main__ import main


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--pattern", "2-1"], "--pattern"),
        (["--rows", "0"], "--rows"),
        (["--row-spacing", "0.5"], "--row-spacing"),
    ],
)
def test_bad_input_names_the_argument(args, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args + ["--quiet"])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err


def test_foreign_checkpoint_is_refused(tmp_path, capsys):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SystemExit):
        main(["--rows", "2", "--classifier", str(bad), "--quiet", "--out", str(tmp_path)])
    assert "--classifier" in capsys.readouterr().err


def test_cli_runs_a_small_mission(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "fieldnotes.robot",
        "--rows",
        "2",
        "--plants-per-row",
        "5",
        "--row-spacing",
        "1.3",
        "--pattern",
        "1:1",
        "--seed",
        "3",
        "--train-images",
        "200",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "mission.json").read_text())
    assert data["rows_completed"] == 2 and data["plants_hit"] == 0
    assert data["plants"] == data["plants_marked"]
    assert (out / "field.png").exists() and (out / "classifier.safetensors").exists()
