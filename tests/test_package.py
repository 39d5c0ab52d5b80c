"""The package imports fast: heavy engines load inside the functions that need them."""

import subprocess
import sys

import pytest

HEAVY = ["torch", "pyspark", "deepspeed", "pybullet", "transformers", "onnxruntime", "duckdb"]
SUBPACKAGES = ["memory", "vlm", "trips", "robot", "shop"]


def imported_after(statement: str) -> tuple[set[str], float]:
    """Modules present after running ``statement`` in a fresh interpreter, and its wall time (s)."""
    code = (
        "import sys, time; t = time.perf_counter(); "
        f"{statement}; dt = time.perf_counter() - t; "
        "print(dt); print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, modules = out.stdout.splitlines()[:2]
    return set(modules.split()), float(seconds)


def test_import_fieldnotes_is_light_and_fast():
    modules, seconds = imported_after("import fieldnotes")
    assert not {m for m in HEAVY if m in modules}, "import fieldnotes pulled in a heavy engine"
    # best of three, so a busy machine does not decide it
    best = min(seconds, *(imported_after("import fieldnotes")[1] for _ in range(2)))
    assert best < 1.0, f"import fieldnotes took {best:.2f} s"


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_chapter_packages_do_not_import_spark_deepspeed_or_pybullet(sub):
    modules, _ = imported_after(f"import fieldnotes.{sub}")
    engines = {"pyspark", "deepspeed", "pybullet", "onnxruntime", "duckdb"}
    assert not engines & modules, f"import fieldnotes.{sub} imported {engines & modules}"
