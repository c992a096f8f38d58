"""Throwaway Pants repositories that load perfguard's backend, and real Pants runs on them.

Each repository is a git repository in a temporary folder with its own pants.toml. Its
`[GLOBAL].pythonpath` points at the `pants-plugins` and `src` folders of the perfguard code that
this test imports, so under `pants test` the nested Pants loads the sandbox's copy of the backend.
The nested Pants shares HOME, and with it Pants's caches, so repeated runs are fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional

import pytest

import perfguard
import perfguard_pants
from perfguard_pants.testutil import PEX_CLI_VERSION, pex_cli_known_versions

PANTS_VERSION = "2.17.1"

PLUGINS_DIR = Path(perfguard_pants.__file__).resolve().parent.parent
SRC_DIR = Path(perfguard.__file__).resolve().parent.parent

# Variables passed to the nested Pants. The PANTS_* ones are set by ./pants when a global pip
# configuration sets a constraints file, which crashes pex.
PASSED_ENV_VARS = (
    "PATH",
    "HOME",
    "PYENV_ROOT",
    "PERFGUARD_PEX_CLI",
    "PANTS_SUBPROCESS_ENVIRONMENT_ENV_VARS",
    "PANTS_CA_CERTS_PATH",
)

# A single nested Pants run takes 15-60 s, and resolving a large requirement takes longer.
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class PantsResult:
    """The outcome of one Pants run."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """Return the command and its output, for assertion messages."""
        return (
            f"pants {' '.join(self.args)} exited with {self.exit_code}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr[-6000:]}"
        )


def find_pants() -> str:
    """Return the Pants executable: $PERFGUARD_PANTS_BIN, else the repository's ./pants.

    Skips the calling test when there is neither, which is the case under `pants test` unless
    `[test].extra_env_vars` passes PERFGUARD_PANTS_BIN and PERFGUARD_PEX_CLI.
    """
    configured = os.environ.get("PERFGUARD_PANTS_BIN")
    if configured:
        if not os.environ.get("PERFGUARD_PEX_CLI"):
            pytest.skip(
                "PERFGUARD_PEX_CLI is not set, but ./pants exports it with PERFGUARD_PANTS_BIN."
            )
        return configured
    for folder in PLUGINS_DIR.parents:
        script = folder / "pants"
        if script.is_file() and (folder / "pants.toml").is_file():
            return str(script)
    pytest.skip(
        f"PERFGUARD_PANTS_BIN is not set and no ./pants script was found above {PLUGINS_DIR}. "
        "Under `pants test`, list PERFGUARD_PANTS_BIN in `[test].extra_env_vars`."
    )


def render_pants_toml(*, source_roots: Iterable[str], extra: str = "") -> str:
    """Render a pants.toml that loads perfguard's backend and the local pex CLI."""
    known_versions = ",\n".join(f'  "{entry}"' for entry in pex_cli_known_versions())
    roots = ", ".join(f'"{root}"' for root in source_roots)
    return f"""\
[GLOBAL]
pants_version = "{PANTS_VERSION}"
pythonpath = ["{PLUGINS_DIR}", "{SRC_DIR}"]
backend_packages = ["pants.backend.python", "perfguard_pants"]
ignore_warnings = [
  "$regex$Running Pants from a virtualenv",
  "$regex$The `pants` launcher binary is now the approved way",
]

[source]
root_patterns = [{roots}]

[python]
interpreter_constraints = ["CPython==3.9.*"]

[python-infer]
use_rust_parser = true

[pex-cli]
version = "{PEX_CLI_VERSION}"
known_versions = [
{known_versions},
]
# ./pants builds the pex CLI and exports PERFGUARD_PEX_CLI, as for the perfguard repository.
url_template = "file://%(env.PERFGUARD_PEX_CLI)s"

{extra}
"""


class PantsRepo:
    """A git repository in `root` with a pants.toml that loads perfguard's backend."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(
        cls,
        root: Path,
        files: Mapping[str, str],
        *,
        source_roots: Iterable[str] = ("/src",),
        config: str = "",
    ) -> PantsRepo:
        """Write `files` and a pants.toml under `root` and commit them all."""
        find_pants()
        repo = cls(root)
        root.mkdir(parents=True, exist_ok=True)
        repo.write({"pants.toml": render_pants_toml(source_roots=source_roots, extra=config)})
        repo.write({".gitignore": "/.pants.d/\n/.pids/\n/dist/\n", **files})
        repo.git("init", "--quiet", "--initial-branch=main")
        repo.commit("Add the fixture repository")
        return repo

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write(self, files: Mapping[str, str]) -> None:
        for relative, text in files.items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=perfguard tests", "-c", "user.email=tests@perfguard.invalid"]
        completed = subprocess.run(
            ["git", *identity, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout

    def commit(self, message: str) -> None:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--no-verify", "-m", message)

    def run(self, *args: str, env: Optional[Mapping[str, str]] = None) -> PantsResult:
        """Run `pants --no-pantsd ARGS` in the repository and return its exit code and output."""
        command = [find_pants(), "--no-pantsd", "--no-dynamic-ui", *args]
        completed = subprocess.run(
            command,
            cwd=self.root,
            env={**_passed_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        return PantsResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def _passed_env() -> Dict[str, str]:
    # Only named variables reach the nested Pants, so a developer's PANTS_* settings or a pex
    # venv's PEX_* variables cannot change its behaviour.
    return {name: os.environ[name] for name in PASSED_ENV_VARS if name in os.environ}


# Markers of pip output that mean the index could not be reached, as opposed to a real failure.
_NETWORK_ERRORS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
)


def download_sdist(project: str, version: str, target: Path) -> Path:
    """Download and unpack the sdist of `project==version` from the package index.

    Returns the unpacked `project-version` folder. Skips the calling test when the index is
    unreachable, and fails it on any other pip error.
    """
    command = [
        _python_with_pip(),
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{project}=={version}",
        "-d",
        str(target),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        reason = next((marker for marker in _NETWORK_ERRORS if marker in output), None)
        if reason is not None:
            pytest.skip(
                f"The package index is unreachable ({reason}), so {project} cannot "
                "be downloaded."
            )
        raise AssertionError(f"pip download of {project}=={version} failed:\n{output}")
    (archive,) = target.glob(f"{project}-{version}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(target)
    return target / f"{project}-{version}"


def _python_with_pip() -> str:
    # Under `pants test` the test interpreter is a pex venv without pip, so look on PATH too.
    for candidate in (sys.executable, shutil.which("python3"), shutil.which("python")):
        if candidate is None:
            continue
        probe = subprocess.run(
            [candidate, "-m", "pip", "--version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return candidate
    pytest.skip("No Python interpreter with pip was found to download sdists.")
