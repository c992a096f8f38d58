"""Run the import probe script under a chosen interpreter and load its output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from perfguard.archlint.model import FileAnalysis, ProbeError, ProbeResult
from perfguard.errors import InvalidProbeOutput, ProbeFailed

logger = logging.getLogger(__name__)

PROBE_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_probe.py"
DEFAULT_PROBE_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class ProbeInput:
    """One file to probe: its path and its dotted import name after source roots."""

    path: str
    module: str
    is_package: bool


def read_probe_script() -> bytes:
    """Return the probe's source, for callers that ship it into a sandbox."""
    return PROBE_SCRIPT.read_bytes()


def build_manifest(inputs: Sequence[ProbeInput], introspected_classes: Sequence[str] = ()) -> str:
    files = [
        {"path": item.path, "module": item.module, "is_package": item.is_package} for item in inputs
    ]
    document = {"files": files, "introspected_classes": sorted(introspected_classes)}
    return json.dumps(document, sort_keys=True)


def load_probe_output(stdout: str) -> ProbeResult:
    """Parse the probe's stdout into a ProbeResult.

    Raises:
        InvalidProbeOutput: the text is not JSON or does not match the probe schema.
    """
    try:
        document = json.loads(stdout)
    except ValueError as e:
        raise InvalidProbeOutput(f"Invalid probe output: not JSON ({e}).") from None
    return ProbeResult.from_json(document)


def run_probe(
    python: str,
    inputs: Sequence[ProbeInput],
    *,
    cwd: Optional[str] = None,
    timeout: float = DEFAULT_PROBE_TIMEOUT_SECONDS,
    introspected_classes: Sequence[str] = (),
) -> ProbeResult:
    """Probe `inputs` under the interpreter `python`.

    If the probe process dies (for example, the interpreter crashes on one pathological file),
    each file is probed on its own and a file that still crashes it gets a `ProbeCrashed` error.

    Raises:
        ProbeFailed: the interpreter cannot be started or times out.
        InvalidProbeOutput: the probe printed a document that does not match its schema.
    """
    if not inputs:
        return ProbeResult(python="", files=())
    completed = _run_once(
        python, inputs, cwd=cwd, timeout=timeout, introspected_classes=introspected_classes
    )
    if completed.returncode == 0:
        result = load_probe_output(completed.stdout)
        _check_paths(result, inputs)
        return result
    # A signal (negative status) or an uncaught exception (status 1) can come from one file,
    # so the files are retried one by one. Other statuses mean the interpreter cannot run it.
    if len(inputs) == 1 or not (completed.returncode < 0 or completed.returncode == 1):
        raise ProbeFailed(_describe_failure(python, completed))
    logger.warning(
        "The import probe failed on %d files (%s). Probing each file separately.",
        len(inputs),
        _describe_failure(python, completed),
    )
    return _run_each(
        python, inputs, cwd=cwd, timeout=timeout, introspected_classes=introspected_classes
    )


def _run_once(
    python: str,
    inputs: Sequence[ProbeInput],
    *,
    cwd: Optional[str],
    timeout: float,
    introspected_classes: Sequence[str] = (),
) -> "subprocess.CompletedProcess[str]":
    handle, manifest_path = tempfile.mkstemp(prefix="perfguard-manifest-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as manifest_file:
            manifest_file.write(build_manifest(inputs, introspected_classes))
        command = [python, str(PROBE_SCRIPT), manifest_path]
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except OSError as e:
        raise ProbeFailed(f"Failed to start the import probe with {python!r}: {e}.") from None
    except subprocess.TimeoutExpired:
        raise ProbeFailed(
            f"The import probe under {python!r} timed out after {timeout:.0f} s on "
            f"{len(inputs)} files."
        ) from None
    finally:
        os.unlink(manifest_path)


def _run_each(
    python: str,
    inputs: Sequence[ProbeInput],
    *,
    cwd: Optional[str],
    timeout: float,
    introspected_classes: Sequence[str] = (),
) -> ProbeResult:
    files: List[FileAnalysis] = []
    version = ""
    for item in inputs:
        completed = _run_once(
            python, [item], cwd=cwd, timeout=timeout, introspected_classes=introspected_classes
        )
        if completed.returncode == 0:
            result = load_probe_output(completed.stdout)
            _check_paths(result, [item])
            version = result.python
            files.extend(result.files)
            continue
        logger.warning("The import probe crashed on %s: %s", item.path, completed.returncode)
        error = ProbeError(
            type="ProbeCrashed",
            message=f"the interpreter exited with status {completed.returncode} on this file",
        )
        files.append(FileAnalysis(path=item.path, module=item.module, error=error))
    return ProbeResult(python=version, files=tuple(files))


def _check_paths(result: ProbeResult, inputs: Sequence[ProbeInput]) -> None:
    returned = [analysis.path for analysis in result.files]
    expected = [item.path for item in inputs]
    if returned != expected:
        raise InvalidProbeOutput(
            f"Invalid probe output: expected entries for {len(expected)} files in manifest "
            f"order, got {len(returned)}."
        )


def _describe_failure(python: str, completed: "subprocess.CompletedProcess[str]") -> str:
    stderr = completed.stderr.strip().splitlines()
    detail = stderr[-1] if stderr else "no error output"
    return f"{python!r} exited with status {completed.returncode}: {detail}"
