"""Tests of the `./pants` bootstrap script's interpreter search, errors and pip handling."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest

SCRIPT = Path("pants").resolve()
PANTS_VERSION_LINE = "fake pants ran"


def _run(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _base_env(tmp_path: Path, path: str = "/usr/bin:/bin") -> Dict[str, str]:
    return {
        "PATH": path,
        "HOME": str(tmp_path / "home"),
        "PYENV_ROOT": str(tmp_path / "no-pyenv"),
        "PERFGUARD_CACHE_DIR": str(tmp_path / "cache"),
        "XDG_CONFIG_DIRS": str(tmp_path / "no-global-config"),
    }


def _fake_installed_cache(cache: Path) -> None:
    """Lay out a cache that looks installed, whose `pants` prints its environment."""
    key = _venv_key()
    venv = cache / f"venv-py39-{key}"
    _write_executable(
        venv / "bin" / "pants",
        f'#!/usr/bin/env bash\necho {PANTS_VERSION_LINE} "$@"\nenv\n',
    )
    (venv / ".complete").touch()
    _write_executable(cache / "pex-cli" / "2.1.148" / "pex", "#!/bin/sh\n")


def _venv_key() -> str:
    data = Path("3rdparty/python/constraints.txt").read_bytes() + b"2.17.1\n"
    digest = subprocess.run(
        ["sha256sum"], input=data, capture_output=True, check=True
    ).stdout.decode()
    return digest[:12]


def test_python_variable_not_python39(tmp_path: Path) -> None:
    env = _base_env(tmp_path)
    env["PERFGUARD_PYTHON"] = "/nonexistent/python3.9"

    result = _run(env, "--version")

    assert result.returncode == 1
    assert "PERFGUARD_PYTHON=/nonexistent/python3.9 is not a working CPython 3.9" in result.stderr
    assert "unset it to search PATH and pyenv" in result.stderr


def test_no_python39_anywhere(tmp_path: Path) -> None:
    result = _run(_base_env(tmp_path), "--version")

    assert result.returncode == 1
    assert "CPython 3.9 was not found" in result.stderr
    assert "set PERFGUARD_PYTHON to its path" in result.stderr


def test_pyenv_version_found_without_shim(tmp_path: Path) -> None:
    fake = _write_executable(
        tmp_path / "pyenv" / "versions" / "3.9.99" / "bin" / "python3.9",
        "#!/bin/sh\n"
        'case "$*" in *version_info*) exit 0;; esac\n'
        'echo "fake python3.9 $*" >&2\nexit 3\n',
    )
    env = _base_env(tmp_path)
    env["PYENV_ROOT"] = str(tmp_path / "pyenv")

    result = _run(env, "--version")

    # The fake interpreter passes the version check, then its venv step fails on purpose.
    assert result.returncode == 1
    assert f"`{fake} -m venv` failed" in result.stderr
    assert "Install the venv module for Python 3.9" in result.stderr


def test_installed_cache_runs_pants(tmp_path: Path) -> None:
    env = _base_env(tmp_path)
    _fake_installed_cache(Path(env["PERFGUARD_CACHE_DIR"]))

    result = _run(env, "list", "::")

    assert result.returncode == 0
    assert f"{PANTS_VERSION_LINE} list ::" in result.stdout
    assert "PERFGUARD_PEX_CLI=" in result.stdout
    assert "PANTS_SUBPROCESS_ENVIRONMENT_ENV_VARS" not in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("cert", ["/etc/ssl/certs/custom.pem", None])
def test_global_pip_constraint_workaround(tmp_path: Path, cert: Optional[str]) -> None:
    env = _base_env(tmp_path)
    config_dir = tmp_path / "global-config"
    (config_dir / "pip").mkdir(parents=True)
    lines = ["[global]", "constraint = /somewhere/constraints.txt"]
    if cert:
        lines.append(f"cert = {cert}")
    (config_dir / "pip" / "pip.conf").write_text("\n".join(lines) + "\n")
    env["XDG_CONFIG_DIRS"] = str(config_dir)
    _fake_installed_cache(Path(env["PERFGUARD_CACHE_DIR"]))

    first = _run(env, "--version")
    second = _run(env, "--version")

    assert first.returncode == 0
    assert "PANTS_SUBPROCESS_ENVIRONMENT_ENV_VARS=+['PIP_CONFIG_FILE=/dev/null']" in first.stdout
    assert str(config_dir / "pip" / "pip.conf") in first.stderr
    assert "remove the `constraint` line" in first.stderr
    assert second.stderr == ""
    assert "PIP_CONFIG_FILE=/dev/null" in second.stdout
    if cert:
        assert f"PANTS_CA_CERTS_PATH={cert}" in first.stdout
    elif not _system_pip_cert():
        assert "PANTS_CA_CERTS_PATH" not in first.stdout


def _system_pip_cert() -> bool:
    # The script reads /etc/pip.conf whatever XDG_CONFIG_DIRS is set to, so its cert may be used.
    path = Path("/etc/pip.conf")
    return path.is_file() and "cert" in path.read_text()


def test_pip_config_without_constraint(tmp_path: Path) -> None:
    env = _base_env(tmp_path)
    config_dir = tmp_path / "global-config"
    (config_dir / "pip").mkdir(parents=True)
    (config_dir / "pip" / "pip.conf").write_text("[global]\ncert = /x.pem\n")
    env["XDG_CONFIG_DIRS"] = str(config_dir)
    _fake_installed_cache(Path(env["PERFGUARD_CACHE_DIR"]))

    result = _run(env, "--version")

    assert result.returncode == 0
    assert "PIP_CONFIG_FILE" not in result.stdout
    assert result.stderr == ""
