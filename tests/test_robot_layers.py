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


def test_the_pi_runs_the_exported_cnn_and_the_side_camera_without_torch(tmp_path):
    """What the ``pi`` install extra holds is enough: an exported network classifies side-camera
    crops through onnxruntime in a process where torch cannot be imported."""
    import numpy as np

    from fieldnotes.robot.classifier import build_net, export_onnx, predict_proba

    net = build_net()
    net.eval()
    path = export_onnx(net, tmp_path / "flower.onnx")
    crops = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "crops.npy", crops)
    expected = predict_proba(net, crops)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as on a Pi without torch: importing it fails\n"
        "import numpy as np\n"
        "import fieldnotes.robot.side_camera, fieldnotes.robot.localisation\n"
        "from fieldnotes.robot.classifier import onnx_predict_proba\n"
        f"p = onnx_predict_proba({str(path)!r}, np.load({str(tmp_path / 'crops.npy')!r}))\n"
        "print(' '.join(f'{v:.6f}' for v in p))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = np.array([float(v) for v in proc.stdout.split()])
    assert np.allclose(got, expected, atol=1e-4)
