"""dev.py: the newcomer's entry point passes `idp …` through to the virtualenv's command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Replaced(Exception):
    """os.execv replaces the process: nothing after it runs."""


def exec_recorder(calls: list):
    def execv(path, argv):
        calls.append((path, argv))
        raise Replaced

    return execv


@pytest.fixture
def dev(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("dev_entry", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BIN", tmp_path)
    (tmp_path / "idp").write_text("#!/bin/sh\n")
    return module


def test_idp_passes_every_argument_to_the_virtualenvs_idp(dev, tmp_path, monkeypatch):
    """Test that `dev.py idp admins create --email x` runs .venv/bin/idp with those arguments."""
    calls = []
    monkeypatch.setattr(dev.os, "execv", exec_recorder(calls))
    monkeypatch.setattr(dev, "ensure_venv", lambda extras: pytest.fail("installed again"))
    with pytest.raises(Replaced):
        dev.main(["idp", "admins", "create", "--email", "a@example.jp"])
    assert calls == [(tmp_path / "idp",
                      [str(tmp_path / "idp"), "admins", "create", "--email", "a@example.jp"])]


def test_idp_installs_first_when_the_virtualenv_is_missing(dev, tmp_path, monkeypatch):
    (tmp_path / "idp").unlink()
    installed = []
    monkeypatch.setattr(dev, "ensure_venv", installed.append)
    monkeypatch.setattr(dev.os, "execv", exec_recorder([]))
    with pytest.raises(Replaced):
        dev.main(["idp", "--help"])
    assert installed == [""]


def test_unknown_command_prints_the_usage(dev, capsys):
    assert dev.main(["nope"]) == 2
    assert "dev.py idp" in capsys.readouterr().err


@pytest.fixture
def pip_calls(dev, tmp_path, monkeypatch):
    """ensure_venv with a project of its own (tmp) and pip recorded instead of run."""
    (tmp_path / "python").write_text("#!/bin/sh\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "STAMP", tmp_path / "machi-id-installed")
    calls = []
    monkeypatch.setattr(dev, "run", lambda *cmd: calls.append(cmd[-1]))
    return calls


def test_pip_runs_once_per_pyproject_and_extras(dev, tmp_path, pip_calls):
    """Test that a second `dev.py test` asks pip nothing, while other extras or a changed
    pyproject.toml install again."""
    dev.ensure_venv("[test,browser]")
    dev.ensure_venv("[test,browser]")
    assert pip_calls == [".[test,browser]"]
    dev.ensure_venv("")
    dev.ensure_venv("[test,browser]")
    assert pip_calls == [".[test,browser]", "."]
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    dev.ensure_venv("[test,browser]")
    assert pip_calls == [".[test,browser]", ".", ".[test,browser]"]


def test_a_failed_install_is_asked_again(dev, tmp_path, pip_calls, monkeypatch):
    """Test that pip failing leaves no stamp, so the next run installs again."""
    def failing(*cmd):
        raise dev.subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(dev, "run", failing)
    with pytest.raises(dev.subprocess.CalledProcessError):
        dev.ensure_venv("[test]")
    assert not (tmp_path / "machi-id-installed").exists()
