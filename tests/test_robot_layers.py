"""The motion layer (drive, control, row detector, sensing, localisation) loads neither the
classifier nor torch."""

import subprocess
import sys


def test_motion_layer_does_not_import_the_cnn():
    code = (
        "import sys\n"
        "import fieldnotes.robot.drive, fieldnotes.robot.control, fieldnotes.robot.row_detector\n"
        "import fieldnotes.robot.sensing, fieldnotes.robot.localisation\n"
        "loaded = [m for m in ('fieldnotes.robot.classifier', 'torch') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
