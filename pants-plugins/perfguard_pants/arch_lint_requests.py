"""Requests and results of the `arch-lint` rules that the engine memoizes between runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import FrozenSet, Optional, Tuple

from pants.backend.python.target_types import PythonSourceField
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.engine.addresses import Address

from perfguard.archlint.config import ArchLintConfig
from perfguard.archlint.cycles import CycleComponent
from perfguard.archlint.graph import ImportGraph
from perfguard.archlint.model import FileAnalysis
from perfguard.archlint.probe import ProbeInput
from perfguard.archlint.rules import ArchLintResult
from perfguard.findings import Cost


@dataclass(frozen=True)
class ArchLintRunRequest:
    """The files to check, as (address, path) pairs, and the settings to check them with."""

    roots: Tuple[Tuple[Address, str], ...]
    focus: FrozenSet[str]
    config: ArchLintConfig
    batch_size: int
    measure_costs: bool
    cost_runs: int


@dataclass(frozen=True)
class ArchLintRun:
    """The check's result, or the parser failures that stopped it."""

    result: Optional[ArchLintResult]
    failures: Tuple[str, ...] = ()


@dataclass(frozen=True)
class CostEnvironment:
    """Interpreter constraints and resolve shared by the targets measured in one virtualenv."""

    constraints: InterpreterConstraints
    resolve: str

    def describe(self) -> str:
        resolve = "" if self.resolve == "<ignore>" else f", resolve {self.resolve}"
        return f"the requirements of the importing targets ({self.constraints}{resolve})"


@dataclass(frozen=True)
class FileGroupRequest:
    """Python file targets that one memoized rule resolves and parses together."""

    addresses: Tuple[Address, ...]
    introspected_classes: Tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupFile:
    """A file of a group: its target, environment and dependencies on `.py` file targets."""

    address: Address
    path: str
    environment: CostEnvironment
    dependencies: Tuple[Address, ...]


@dataclass(frozen=True)
class FileGroupResult:
    files: Tuple[GroupFile, ...]
    analyses: Tuple[FileAnalysis, ...]
    failures: Tuple[str, ...]


@dataclass(frozen=True)
class CostJob:
    """Heavy modules to measure in one environment, and the targets that import them."""

    environment: CostEnvironment
    modules: Tuple[str, ...]
    addresses: Tuple[Address, ...]


@dataclass(frozen=True)
class ImportCostsRequest:
    jobs: Tuple[CostJob, ...]
    runs: int


@dataclass(frozen=True)
class ImportCostsResult:
    """(environment description, module, cost) triples."""

    costs: Tuple[Tuple[str, str, Cost], ...]


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
