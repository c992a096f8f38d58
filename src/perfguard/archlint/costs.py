"""Measured import costs of the heavy modules that findings name.

The measuring itself happens in `perfguard/scripts/import_cost.py`, run by the Pants backend in
a sandbox with the target's interpreter and third-party requirements. This module builds its
spec, validates its output and turns each entry into a `Cost`, or into a "not measured" note
that gives the reason.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from perfguard.archlint.rules import ArchLintResult
from perfguard.errors import InvalidProbeOutput, ProbeFailed
from perfguard.findings import Cost

COST_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "import_cost.py"
COST_PROBE_VERSION = 1
DEFAULT_RUNS = 5
DEFAULT_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class ModuleCostRequest:
    """A heavy module to measure, and the source files that import it at runtime."""

    module: str
    importer_paths: Tuple[str, ...]


def read_cost_script() -> bytes:
    """Return the cost probe's source, for callers that ship it into a sandbox."""
    return COST_SCRIPT.read_bytes()


def build_cost_spec(
    modules: Sequence[str],
    *,
    runs: int = DEFAULT_RUNS,
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS,
) -> str:
    return json.dumps(
        {"modules": sorted(set(modules)), "runs": runs, "timeout_s": timeout_s}, sort_keys=True
    )


def find_cost_requests(result: ArchLintResult) -> List[ModuleCostRequest]:
    """List the modules that findings name, each with the files whose imports load it.

    For a transitive finding the importing file is the last file on the chain, the one that
    imports the heavy module itself, because its requirements are the ones that provide it.
    """
    importers: Dict[str, Set[str]] = {}
    for finding in result.findings:
        module = finding.data.get("cost_module")
        if not module:
            continue
        where = finding.related[-1] if finding.related else finding.location
        importers.setdefault(str(module), set()).add(where.path)
    return [
        ModuleCostRequest(module, tuple(sorted(paths)))
        for module, paths in sorted(importers.items())
    ]


def load_cost_output(stdout: str, *, environment: str) -> Dict[str, Cost]:
    """Parse the cost probe's stdout into a Cost per module.

    A module that failed to import gets a Cost with no figures and a note that starts with
    "not measured" and names `environment`.

    Raises:
        InvalidProbeOutput: the text is not JSON or does not match the cost probe's schema.
    """
    try:
        document = json.loads(stdout)
    except ValueError as e:
        raise InvalidProbeOutput(f"Invalid import cost output: not JSON ({e}).") from None
    if not isinstance(document, dict) or document.get("cost_probe_version") != COST_PROBE_VERSION:
        raise InvalidProbeOutput(
            "Invalid import cost output: expected an object with cost_probe_version "
            f"{COST_PROBE_VERSION}. Run the import_cost.py that ships with this perfguard version."
        )
    entries = document.get("modules")
    if not isinstance(entries, list):
        raise InvalidProbeOutput("Invalid import cost output: `modules` must be a list.")
    python = str(document.get("python", "?"))
    return dict(_entry_cost(entry, python, environment) for entry in entries)


def not_measured(reason: str) -> Cost:
    return Cost(note=f"not measured: {reason}")


def measure_costs(
    python: str, modules: Sequence[str], *, runs: int = DEFAULT_RUNS
) -> Dict[str, Cost]:
    """Measure `modules` with the interpreter `python`, outside any sandbox.

    Raises:
        ProbeFailed: the interpreter cannot be started or the probe rejects its spec.
        InvalidProbeOutput: the probe printed a document that does not match its schema.
    """
    if not modules:
        return {}
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as spec_file:
        spec_file.write(build_cost_spec(modules, runs=runs))
        spec_file.flush()
        try:
            completed = subprocess.run(
                [python, str(COST_SCRIPT), spec_file.name],
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as e:
            raise ProbeFailed(
                f"Failed to start the import cost probe with {python!r}: {e}."
            ) from None
    if completed.returncode != 0:
        raise ProbeFailed(
            f"The import cost probe under {python!r} exited with status {completed.returncode}: "
            f"{completed.stderr.strip()[-500:]}"
        )
    return load_cost_output(completed.stdout, environment=python)


def _entry_cost(entry: Any, python: str, environment: str) -> Tuple[str, Cost]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("module"), str):
        raise InvalidProbeOutput(
            f"Invalid import cost output: each entry needs a `module` string, got {entry!r}."
        )
    module = entry["module"]
    error = entry.get("error")
    if error is not None:
        reason = f"importing {module} failed under Python {python} in {environment}: {error}"
        return module, not_measured(reason)
    ms = _number(entry, "ms")
    mb = _number(entry, "mb")
    runs = entry.get("runs")
    note = f"median of {runs} runs, Python {python}, {environment}"
    return module, Cost(ms=ms, mb=mb, note=note)


def _number(entry: Mapping[str, Any], key: str) -> Optional[float]:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidProbeOutput(
            f"Invalid import cost output: {entry.get('module')}.{key} must be a number, "
            f"got {value!r}."
        )
    return float(value)
