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


def test_the_pi_extra_holds_what_the_cameras_need():
    """With only the standard library, fieldnotes and the ``pi`` extra's packages importable, the
    row detector and the side camera still run (both filter images with scipy)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = f"""
import importlib.abc, sys, tomllib
with open({str(root / "pyproject.toml")!r}, "rb") as fh:
    extra = tomllib.load(fh)["project"]["optional-dependencies"]["pi"]
allowed = {{r.split("==")[0].split("[")[0].strip().lower().replace("-", "_") for r in extra}}
allowed.add("fieldnotes")
class OnlyThePiExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top.lower() in allowed or top.startswith("_"):
            return None
        raise ImportError(top + " is not in the pi extra")
sys.meta_path.insert(0, OnlyThePiExtra())
import numpy as np
from fieldnotes.robot.row_detector import Camera, detect_rows
from fieldnotes.robot.side_camera import SideCamera, find_flowers
cam, side = Camera(), SideCamera()
rng = np.random.default_rng(0)
detect_rows(rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8), cam, 1.2)
find_flowers(rng.integers(0, 255, (side.height, side.width, 3), dtype=np.uint8), side, -1)
print("ran")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ran"


def test_the_gpio_backend_install_recipe_names_the_pi_extra_pins():
    """The docstring's --no-deps recipe installs exactly the ``pi`` extra (no torch)."""
    import re
    import tomllib
    from pathlib import Path

    from fieldnotes.robot.drive import GpioBackend

    root = Path(__file__).resolve().parents[1]
    with open(root / "pyproject.toml", "rb") as fh:
        extra = tomllib.load(fh)["project"]["optional-dependencies"]["pi"]
    doc = GpioBackend.__doc__
    assert "pip install --no-deps ." in doc
    pins = set(re.findall(r"[A-Za-z0-9_.-]+==[0-9A-Za-z.]+", doc))
    assert pins == set(extra)
