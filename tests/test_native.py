"""fieldnotes.native: output written to file descriptors 1 and 2 is silenced, then restored."""

import os
import subprocess

from fieldnotes.native import quiet_native_output


def test_fd_output_and_child_processes_are_silenced_then_restored(capfd):
    with quiet_native_output():
        os.write(1, b"native stdout\n")
        os.write(2, b"native stderr\n")
        subprocess.run(["sh", "-c", "echo child out; echo child err >&2"], check=True)
    os.write(2, b"after\n")
    out, err = capfd.readouterr()
    assert "native" not in out + err and "child" not in out + err
    assert err == "after\n"


def test_descriptors_are_restored_after_an_exception(capfd):
    try:
        with quiet_native_output():
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    os.write(1, b"visible\n")
    assert capfd.readouterr().out == "visible\n"
