"""fieldnotes.preflight: a missing system program is installed with apt, or named in one line."""

import shutil

from fieldnotes import preflight


def fake_which(present):
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_nothing_missing_means_nothing_to_do(monkeypatch):
    monkeypatch.setattr(shutil, "which", fake_which({"java", "npm", "chromium"}))
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
    assert [r.program for r in preflight.missing(preflight.TEST)] == ["chromium"]


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
