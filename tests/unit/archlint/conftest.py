"""Shared helpers: real interpreters for the probe, and in-memory probe records."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from perfguard.archlint.model import FileAnalysis, ImportRecord, ProbeResult
from perfguard.archlint.probe import ProbeInput, run_probe

_PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))) / "versions"


def find_python(version: str) -> Optional[str]:
    """Return an interpreter for `version` ("3.12"), from PATH or a pyenv install."""
    if "{}.{}".format(*sys.version_info[:2]) == version:
        return sys.executable
    for candidate in sorted(_PYENV_ROOT.glob(f"{version}.*/bin/python{version}")):
        return str(candidate)
    return shutil.which(f"python{version}")


def require_python(version: str) -> str:
    python = find_python(version)
    if python is None:
        pytest.skip(f"Python {version} is not installed (looked on PATH and in {_PYENV_ROOT}).")
    return python


def probe_sources(
    tmp_path: Path, python: str, sources: Dict[str, bytes], *, root: str = "src"
) -> ProbeResult:
    """Write `sources` (module name to bytes) under tmp_path/root and probe them all."""
    inputs: List[ProbeInput] = []
    for module, data in sources.items():
        is_package = module.endswith(".__init__")
        name = module[: -len(".__init__")] if is_package else module
        path = tmp_path / root / Path(*module.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        inputs.append(ProbeInput(path=str(path), module=name, is_package=is_package))
    return run_probe(python, inputs)


def probe_one(tmp_path: Path, python: str, source: str, module: str = "pkg.mod") -> FileAnalysis:
    return probe_sources(tmp_path, python, {module: source.encode("utf-8")}).files[0]


def make_import(
    module: str,
    line: int = 1,
    *,
    context: str = "runtime",
    kind: str = "import",
    names: Sequence[str] = (),
    level: int = 0,
    in_try: bool = False,
) -> ImportRecord:
    return ImportRecord(
        module=module,
        raw=module,
        line=line,
        column=1,
        level=level,
        names=tuple(names),
        kind=kind,
        context=context,
        in_try_import_error=in_try,
    )


def make_file(path: str, module: str, *imports: ImportRecord, **fields: Any) -> FileAnalysis:
    return FileAnalysis(path=path, module=module, lines=10, imports=tuple(imports), **fields)


def edge_map(*pairs: Tuple[str, str]) -> Dict[str, List[str]]:
    edges: Dict[str, List[str]] = {}
    for importer, imported in pairs:
        edges.setdefault(importer, []).append(imported)
    return edges
