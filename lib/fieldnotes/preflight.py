"""System programs the book needs outside Python, checked (and installed with apt) before anything runs.

Standard library only: the Makefile runs it with the system ``python3`` before the virtual
environment exists::

    python3 lib/fieldnotes/preflight.py book   # what `make book` needs
    python3 lib/fieldnotes/preflight.py test   # what `make test` needs (adds the browser)

A missing program is installed with ``apt-get`` when it is there; otherwise the check stops
with one line that says what is missing and which chapter needs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    """A program on PATH (or in one of ``folders``, glob patterns), its Debian package, who needs it."""

    program: str
    apt_package: str
    needed_by: str
    folders: tuple[str, ...] = ()

    def present(self) -> bool:
        """Whether the program is on PATH or in one of the extra folders."""
        if shutil.which(self.program) is not None:
            return True
        return any(glob.glob(os.path.join(folder, self.program)) for folder in self.folders)


BOOK = (
    Requirement(
        "java", "openjdk-17-jre-headless", "chapter 3 (Return trips: PySpark runs on Java 17)"
    ),
    Requirement(
        "npm",
        "npm",
        "the site (MathJax, RequireJS and the widget manager are vendored from the npm registry)",
    ),
)
TEST = BOOK + (
    Requirement("chromium", "chromium", "the site test (pages are checked in headless Chromium)"),
    # Debian keeps the server programs off PATH, in a folder per major version
    Requirement("initdb", "postgresql", "chapter 5 (Hackathon chatbot: the store tests start a PostgreSQL server)",
                folders=("/usr/lib/postgresql/*/bin",)),
)
TARGETS = {"book": BOOK, "test": TEST}


def missing(requirements: tuple[Requirement, ...]) -> list[Requirement]:
    """The requirements whose program is not installed."""
    return [r for r in requirements if not r.present()]


def apt_install(packages: list[str]) -> None:
    """Install Debian packages non-interactively (as root, or through sudo when not root)."""
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
    )


def ensure(target: str) -> int:
    """Make sure every program ``target`` ('book' or 'test') needs is present; return an exit code."""
    if target not in TARGETS:
        print(f"preflight: unknown target {target!r}; expected one of {sorted(TARGETS)}")
        return 2
    lacking = missing(TARGETS[target])
    if not lacking:
        return 0
    if shutil.which("apt-get") is None:
        for r in lacking:
            print(
                f"preflight: '{r.program}' is missing and apt-get is not available to install "
                f"'{r.apt_package}'; it is needed by {r.needed_by}."
            )
        return 1
    print("preflight: installing " + ", ".join(r.apt_package for r in lacking) + " with apt-get")
    try:
        apt_install([r.apt_package for r in lacking])
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"preflight: apt-get failed ({e}); install {lacking[0].apt_package} by hand.")
        return 1
    still = missing(tuple(lacking))
    for r in still:
        print(f"preflight: '{r.program}' is still missing after apt-get; needed by {r.needed_by}.")
    return 1 if still else 0


if __name__ == "__main__":
    sys.exit(ensure(sys.argv[1] if len(sys.argv) > 1 else "book"))
