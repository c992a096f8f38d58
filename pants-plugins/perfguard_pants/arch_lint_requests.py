"""Requests and results of the `arch-lint` rules that the engine memoizes between runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

from pants.backend.python.target_types import PythonSourceField
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints

from perfguard.archlint.cycles import CycleComponent
from perfguard.archlint.graph import ImportGraph
from perfguard.archlint.model import FileAnalysis
from perfguard.archlint.probe import ProbeInput


@dataclass(frozen=True)
class ProbeBatchRequest:
    """Source files to parse in one sandboxed process, under one interpreter."""

    constraints: InterpreterConstraints
    sources: Tuple[PythonSourceField, ...]
    inputs: Tuple[ProbeInput, ...]


@dataclass(frozen=True)
class ProbeBatchResult:
    """The probe's analyses of a batch, or the message that says why the probe failed."""

    files: Tuple[FileAnalysis, ...]
    failure: Optional[str] = None


@dataclass(frozen=True)
class CyclesRequest:
    """An import graph to search for cycles, and the paths that reported cycles must touch."""

    graph: ImportGraph
    focus_paths: Optional[FrozenSet[str]]


@dataclass(frozen=True)
class CyclesResult:
    components: Tuple[CycleComponent, ...]
