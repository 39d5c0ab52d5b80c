"""fieldnotes.preflight: a missing system program is installed with apt, or named in one line."""

import glob
import shutil

import pytest

from fieldnotes import preflight


@pytest.fixture(autouse=True)
def no_postgres_folder(monkeypatch):
    """Only the fake PATH decides, unless a test says the server's folder exists."""
    monkeypatch.setattr(glob, "glob", lambda pattern: [])


def fake_which(present):
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_nothing_missing_means_nothing_to_do(monkeypatch):
    monkeypatch.setattr(shutil, "which", fake_which({"java", "npm", "chromium", "initdb"}))
    assert preflight.ensure("test") == 0


def test_missing_java_without_apt_names_chapter_3(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", fake_which({"npm"}))
    assert preflight.ensure("book") == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert "'java' is missing" in lines[0] and "chapter 3" in lines[0] and "apt-get" in lines[0]


def test_missing_npm_without_apt_names_the_site(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", fake_which({"java"}))
    assert preflight.ensure("book") == 1
    out = capsys.readouterr().out
    assert "'npm' is missing" in out and "site" in out


def test_book_does_not_need_the_browser(monkeypatch):
    monkeypatch.setattr(shutil, "which", fake_which({"java", "npm"}))
    assert preflight.ensure("book") == 0
    assert [r.program for r in preflight.missing(preflight.TEST)] == ["chromium", "initdb"]


def test_missing_program_is_installed_with_apt(monkeypatch):
    present = {"java", "apt-get"}
    installed = []

    def fake_install(packages):
        installed.extend(packages)
        present.add("npm")

    monkeypatch.setattr(shutil, "which", fake_which(present))
    monkeypatch.setattr(preflight, "apt_install", fake_install)
    assert preflight.ensure("book") == 0
    assert installed == ["npm"]


def test_unknown_target(capsys):
    assert preflight.ensure("nope") == 2
    assert "unknown target" in capsys.readouterr().out


def test_postgres_server_found_in_debians_versioned_folder(monkeypatch):
    monkeypatch.setattr(shutil, "which", fake_which({"java", "npm", "chromium"}))
    monkeypatch.setattr(
        glob, "glob",
        lambda pattern: ["/usr/lib/postgresql/15/bin/initdb"] if pattern == "/usr/lib/postgresql/*/bin/initdb" else [])
    assert preflight.ensure("test") == 0


def test_missing_postgres_without_apt_names_chapter_5(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", fake_which({"java", "npm", "chromium"}))
    assert preflight.ensure("test") == 1
    out = capsys.readouterr().out
    assert "'initdb' is missing" in out and "'postgresql'" in out and "chapter 5" in out
