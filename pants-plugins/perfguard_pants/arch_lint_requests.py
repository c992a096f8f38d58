"""Requests and results of the `arch-lint` rules that the engine memoizes between runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
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
    introspected_classes: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeBatchResult:
    """The probe's analyses of a batch, or an error message when the probe failed."""

    files: Tuple[FileAnalysis, ...]
    failure: Optional[str] = None


@dataclass(frozen=True)
class CyclesRequest:
    """An import graph to search for cycles, and the paths that reported cycles must touch.

    The engine compares requests by `fingerprint` alone, because hashing and comparing the
    graph's edges field by field took most of a second on sympy's 13,600 edges.
    """

    fingerprint: str
    graph: ImportGraph = field(compare=False, hash=False)
    focus_paths: Optional[FrozenSet[str]] = field(compare=False, hash=False)

    @classmethod
    def create(cls, graph: ImportGraph, focus_paths: Optional[FrozenSet[str]]) -> CyclesRequest:
        digest = hashlib.sha256()
        for edge in graph.edges:
            fields = (edge.importer, edge.imported, edge.kind.value, edge.line, edge.column)
            digest.update(repr((fields, edge.explicit)).encode())
        digest.update(repr(None if focus_paths is None else sorted(focus_paths)).encode())
        return cls(digest.hexdigest(), graph, focus_paths)


@dataclass(frozen=True)
class CyclesResult:
    components: Tuple[CycleComponent, ...]
