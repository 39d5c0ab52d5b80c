"""Children that die with their starter (fieldnotes.lifetime): a killed kernel leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from processes import gone, wait_gone

from fieldnotes.lifetime import STARTER_ENV, die_with_starter, starter_environment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")

#: A middle process that starts a child which calls die_with_starter, prints the child's pid, waits.
MIDDLE = """
import os, subprocess, sys
from fieldnotes.lifetime import starter_environment
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=os.environ | starter_environment())
print(child.pid, flush=True)
child.wait()
"""
CHILD = """
import os, time
from fieldnotes.lifetime import die_with_starter
die_with_starter()
assert "FIELDNOTES_DIE_WITH" not in os.environ
print("armed", flush=True)
time.sleep(300)
"""


def test_a_child_dies_when_its_starter_is_killed():
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, CHILD], stdout=subprocess.PIPE, text=True)
    try:
        child = int(middle.stdout.readline())
        time.sleep(1.0)  # let the child arm itself (it prints "armed" to the shared stdout)
        assert not gone(child)
        middle.send_signal(signal.SIGKILL)
        middle.wait(timeout=10)
        assert wait_gone(child, 10), f"child {child} outlived its killed starter"
    finally:
        middle.kill()
        middle.wait(timeout=10)


def test_starter_environment_names_this_process(monkeypatch):
    assert starter_environment() == {STARTER_ENV: str(os.getpid())}
    monkeypatch.delenv(STARTER_ENV, raising=False)
    die_with_starter()  # nothing to do without the variable
    monkeypatch.setenv(STARTER_ENV, "not-a-pid")
    with pytest.raises(ValueError, match=STARTER_ENV):
        die_with_starter()
