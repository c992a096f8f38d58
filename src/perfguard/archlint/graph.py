"""File-level import graph: edges classified as runtime, deferred or typing."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from perfguard.archlint.model import FileAnalysis, ImportRecord


class EdgeKind(enum.Enum):
    """When the import behind an edge runs."""

    runtime = "runtime"
    """While the importer itself is being imported."""
    deferred = "deferred"
    """Only when a function or lambda of the importer is called."""
    typing = "typing"
    """Never at runtime: the import sits under a TYPE_CHECKING guard."""


_KIND_ORDER = {"runtime": 0, "deferred": 1, "typing": 2}


@dataclass(frozen=True, order=True)
class ImportEdge:
    """An importer file depending on an imported file.

    `line` and `column` locate the import in the importer that decides `kind`, or are 0 when
    `explicit` is true: no import statement matches, as for a dependency declared in a BUILD
    file, and the edge counts as runtime.
    """

    importer: str
    imported: str
    kind: EdgeKind
    line: int = 0
    column: int = 0
    explicit: bool = False

    def describe(self) -> str:
        location = f"{self.importer}:{self.line}" if self.line else self.importer
        suffix = " (explicit dependency)" if self.explicit else ""
        return f"{location} -> {self.imported}{suffix}"


@dataclass(frozen=True)
class ImportGraph:
    """Classified edges keyed by importer, with both keys and edges sorted."""

    edges: Tuple[ImportEdge, ...]

    def edges_from(self, importer: str) -> Tuple[ImportEdge, ...]:
        return tuple(edge for edge in self.edges if edge.importer == importer)

    def nodes(self) -> Tuple[str, ...]:
        names: Set[str] = set()
        for edge in self.edges:
            names.add(edge.importer)
            names.add(edge.imported)
        return tuple(sorted(names))


def build_import_graph(
    files: Sequence[FileAnalysis], edges: Mapping[str, Sequence[str]]
) -> ImportGraph:
    """Classify each file-level edge with the importer's import records.

    An edge is runtime if any matching import runs at import time, else deferred if any runs in
    a function, else typing. Self-edges are dropped.
    """
    by_path = {analysis.path: analysis for analysis in files}
    by_module = {analysis.module: analysis for analysis in files}
    classified = []
    for importer in sorted(edges):
        analysis = by_path.get(importer)
        records_by_module = None if analysis is None else _index_records(analysis)
        for imported in sorted(set(edges[importer])):
            if imported == importer:
                continue
            classified.append(
                _classify_edge(importer, imported, by_path, by_module, records_by_module)
            )
    return ImportGraph(tuple(sorted(classified)))


def _index_records(analysis: FileAnalysis) -> Dict[str, List[ImportRecord]]:
    """Map every module that an import of `analysis` may load to those import records."""
    index: Dict[str, List[ImportRecord]] = {}
    for record in analysis.imports:
        for module in set(record.candidate_modules()):
            index.setdefault(module, []).append(record)
    return index


def build_edges_from_imports(files: Sequence[FileAnalysis]) -> Dict[str, Tuple[str, ...]]:
    """Resolve every import to the probed files it loads, for use without a Pants graph.

    `import a.b` maps to the file of `a.b`. `from a import b` maps to the file of submodule
    `a.b` when it exists, and to the file of `a` for names that are not submodules. Imports of
    modules outside `files` are left out, as are the parent `__init__` files that Python also
    runs, because Pants dependency inference does not add those either.
    """
    path_by_module = {analysis.module: analysis.path for analysis in files if not analysis.error}
    edges: Dict[str, Tuple[str, ...]] = {}
    for analysis in files:
        targets: Set[str] = set()
        for record in analysis.imports:
            targets.update(_resolve_record(record, path_by_module))
        targets.discard(analysis.path)
        if targets:
            edges[analysis.path] = tuple(sorted(targets))
    return edges


def _resolve_record(record: ImportRecord, path_by_module: Mapping[str, str]) -> List[str]:
    if record.module is None:
        return []
    targets = []
    if record.kind == "from":
        found_all = True
        for name in record.names:
            path = path_by_module.get(f"{record.module}.{name}")
            if path is None:
                found_all = False
            else:
                targets.append(path)
        if found_all and record.names:
            return targets
    path = path_by_module.get(record.module)
    if path is not None:
        targets.append(path)
    return targets


def _classify_edge(
    importer: str,
    imported: str,
    by_path: Mapping[str, FileAnalysis],
    by_module: Mapping[str, FileAnalysis],
    records_by_module: Optional[Mapping[str, List[ImportRecord]]] = None,
) -> ImportEdge:
    importer_analysis = by_path.get(importer)
    imported_analysis = by_path.get(imported)
    if importer_analysis is None or imported_analysis is None:
        return ImportEdge(importer, imported, EdgeKind.runtime, explicit=True)
    if records_by_module is None:
        records_by_module = _index_records(importer_analysis)
    matches = _matching_records(importer_analysis, imported_analysis, by_module, records_by_module)
    if not matches:
        return ImportEdge(importer, imported, EdgeKind.runtime, explicit=True)
    best = min(matches, key=lambda record: (_KIND_ORDER[record.context], record.line))
    return ImportEdge(importer, imported, EdgeKind(best.context), best.line, best.column)


def _matching_records(
    importer: FileAnalysis,
    imported: FileAnalysis,
    by_module: Mapping[str, FileAnalysis],
    records_by_module: Mapping[str, List[ImportRecord]],
) -> List[ImportRecord]:
    target = imported.module
    matches = records_by_module.get(target)
    if matches:
        return matches
    # `from pkg import Name` where `pkg/__init__.py` re-exports Name from the imported file.
    reexports = _reexported_names(target, by_module)
    return [
        record
        for record in importer.imports
        if record.kind == "from"
        and record.module in reexports
        and _names_overlap(record.names, reexports[record.module])
    ]


def _names_overlap(imported_names: Iterable[str], exported_names: Set[str]) -> bool:
    if "*" in exported_names:
        return True
    return any(name in exported_names for name in imported_names)


def _reexported_names(target: str, by_module: Mapping[str, FileAnalysis]) -> Dict[str, Set[str]]:
    """Map each parent package of `target` to the names its `__init__` imports from `target`."""
    reexports: Dict[str, Set[str]] = {}
    for package in _parent_packages(target):
        init = by_module.get(package)
        if init is None or not init.is_package:
            continue
        for record in init.imports:
            if record.is_runtime and record.kind == "from" and record.module == target:
                reexports.setdefault(package, set()).update(record.names)
    return reexports


def _parent_packages(module: str) -> Iterable[str]:
    parts = module.split(".")
    for end in range(len(parts) - 1, 0, -1):
        yield ".".join(parts[:end])
