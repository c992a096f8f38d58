"""The `perfguard arch-lint` command line on sample trees and on a real PyPI sdist."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import require_python  # pants: no-infer-dep

# `python -m perfguard` runs perfguard/__main__.py, which no other module imports. Importing it
# here makes Pants's dependency inference copy it into the test sandbox.
import perfguard.__main__  # noqa: F401
from perfguard.archlint.command import discover_sources
from perfguard.archlint.probe import run_probe
from perfguard.cli import main

SRC_ROOT = Path(__file__).resolve().parents[3] / "src"

# A small pure-Python sdist with `if t.TYPE_CHECKING:` blocks and a TYPE_CHECKING-only cycle.
SDIST_NAME = "click"
SDIST_VERSION = "8.1.7"
_NETWORK_ERRORS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ProxyError",
    "No matching distribution found",
)


def _write_tree(root: Path, files: Dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


SAMPLE = {
    "app/__init__.py": "",
    "app/protocols.py": "import torch\nfrom app import models\n",
    "app/models.py": "from app import protocols\nclass Model:\n    pass\n",
}


def _run(args: List[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_text_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_tree(tmp_path, SAMPLE)
    monkeypatch.chdir(tmp_path)

    code, out, _ = _run(["arch-lint", "--protocol-glob", "**/protocols.py", "."], capsys)

    assert code == 1
    assert "app/protocols.py:1: heavy-import [critical]" in out
    assert "import-time import cycle: app/models.py -> app/protocols.py -> app/models.py" in out


def test_cli_measures_costs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_tree(tmp_path, {"app/__init__.py": "", "app/protocols.py": "import asyncio\n"})
    monkeypatch.chdir(tmp_path)
    args = ["arch-lint", "--heavy", "asyncio", "--protocol-glob", "**/protocols.py"]

    code, out, _ = _run(args + ["--measure-costs", "--format", "json", "."], capsys)

    document = json.loads(out)
    assert code == 1
    assert document["findings"][0]["cost"]["ms"] > 0
    assert document["measured_cost_ms"] == document["findings"][0]["cost"]["ms"]
    assert document["unmeasured_modules"] == []


def test_cli_baseline_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_tree(tmp_path, SAMPLE)
    monkeypatch.chdir(tmp_path)
    args = ["arch-lint", "--protocol-glob", "**/protocols.py", "--baseline", "base.json", "."]

    update_code, _, _ = _run(args + ["--update-baseline"], capsys)
    check_code, out, _ = _run(args, capsys)

    assert update_code == 0
    assert check_code == 0
    assert "Baseline: 2 accepted, 0 stale entries." in out


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing_root, _, missing_err = _run(["arch-lint", str(tmp_path / "absent")], capsys)
    bad_severity, _, severity_err = _run(
        ["arch-lint", "--severity", "god-object=loud", str(tmp_path)], capsys
    )

    assert missing_root == 2
    assert "is not a folder" in missing_err
    assert bad_severity == 2
    assert "Invalid severity 'loud'" in severity_err


def _python_with_pip() -> str:
    # Under `pants test` the interpreter is a pex venv without pip, so fall back to PATH.
    for candidate in (sys.executable, shutil.which("python3"), shutil.which("python")):
        if (
            candidate
            and subprocess.run(
                [candidate, "-m", "pip", "--version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return candidate
    pytest.skip("No Python with pip was found to download the sdist.")


def _download_sdist(target: Path) -> Path:
    command = [
        _python_with_pip(),
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{SDIST_NAME}=={SDIST_VERSION}",
        "-d",
        str(target),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if completed.returncode != 0:
        output = completed.stdout + completed.stderr
        if any(marker in output for marker in _NETWORK_ERRORS):
            pytest.skip(f"PyPI is unreachable, so {SDIST_NAME} cannot be downloaded.")
        raise AssertionError(f"pip download failed:\n{output}")
    (archive,) = target.glob(f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(target)
    return target / f"{SDIST_NAME}-{SDIST_VERSION}" / "src"


@pytest.fixture(scope="module")
def click_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _download_sdist(tmp_path_factory.mktemp("sdist"))


@pytest.mark.parametrize("version", ["3.9", "3.12"])
def test_cli_on_real_sdist(click_src: Path, version: str) -> None:
    python = require_python(version)
    environment = dict(os.environ, PYTHONPATH=str(SRC_ROOT))
    command = [
        sys.executable,
        "-m",
        "perfguard",
        "arch-lint",
        "--format",
        "json",
        "--python",
        python,
        str(click_src),
    ]

    completed = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=300, check=False
    )

    assert completed.returncode in (0, 1), completed.stderr
    assert completed.stdout, completed.stderr
    report = json.loads(completed.stdout)
    expected_files = len(list(click_src.rglob("*.py")))
    assert report["files_analyzed"] == expected_files
    rule_ids = {finding["rule_id"] for finding in report["findings"]}
    assert "parse-error" not in rule_ids
    typing_cycles = [
        f
        for f in report["findings"]
        if f["rule_id"] == "import-cycle" and f["fingerprint"].startswith("typing:")
    ]
    assert any(
        "click/core.py" in f["message"] and "click/shell_completion.py" in f["message"]
        for f in typing_cycles
    )


def test_real_sdist_type_checking_import(click_src: Path) -> None:
    python = require_python("3.12")
    inputs = discover_sources([str(click_src)])

    result = run_probe(python, inputs)

    by_module = {analysis.module: analysis for analysis in result.files}
    assert all(analysis.error is None for analysis in result.files)
    core = by_module["click.core"]
    completion = [r for r in core.imports if r.module == "click.shell_completion"]
    assert [(r.context, r.names) for r in completion][0] == ("typing", ("CompletionItem",))
    extensions = [r for r in core.imports if r.module == "typing_extensions"]
    assert extensions[0].context == "typing"
