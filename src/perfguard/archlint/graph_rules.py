"""Rules over the import graph: transitive heavy imports and import cycles."""

from __future__ import annotations

from collections import deque
from typing import AbstractSet, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from perfguard.archlint.config import DEFERRED_CYCLE_SEVERITY, TYPING_CYCLE_SEVERITY, ArchLintConfig
from perfguard.archlint.cycles import BreakingMethod, Cycle, CycleComponent, CycleKind
from perfguard.archlint.file_rules import Costs, describe_cost, find_heavy_module, lookup_cost
from perfguard.archlint.graph import EdgeKind, ImportEdge, ImportGraph
from perfguard.archlint.model import FileAnalysis, ImportRecord
from perfguard.findings import Finding, Location, Severity


def find_transitive_heavy_imports(
    files: Sequence[FileAnalysis],
    graph: ImportGraph,
    config: ArchLintConfig,
    *,
    first_party: AbstractSet[str],
    module_costs: Optional[Costs],
) -> Iterator[Finding]:
    """Report protocol files that reach a heavy module through first-party runtime imports.

    Each (protocol file, heavy module) pair is reported once, with the shortest chain. Heavy
    modules that the protocol file imports itself are left to the `heavy-import` rule.
    """
    by_path = {analysis.path: analysis for analysis in files}
    runtime_edges: Dict[str, List[ImportEdge]] = {}
    for edge in graph.edges:
        if edge.kind is EdgeKind.runtime:
            runtime_edges.setdefault(edge.importer, []).append(edge)
    heavy_by_path: Dict[str, List[Tuple[str, str, ImportRecord]]] = {}
    for analysis in files:
        if analysis.error is not None or not config.is_protocol_path(analysis.path):
            continue
        direct = {heavy for _, heavy, _ in _heavy_imports(analysis, config, first_party)}
        chains = _shortest_chains(analysis.path, runtime_edges)
        reported = set(direct)
        for path, chain in chains:
            reached = by_path.get(path)
            if reached is None:
                continue
            if path not in heavy_by_path:
                heavy_by_path[path] = _heavy_imports(reached, config, first_party)
            for imported, heavy, record in heavy_by_path[path]:
                if heavy in reported:
                    continue
                reported.add(heavy)
                yield _transitive_finding(
                    analysis, chain, reached, record, imported, heavy, config, module_costs
                )


def _heavy_imports(
    analysis: FileAnalysis, config: ArchLintConfig, first_party: AbstractSet[str]
) -> List[Tuple[str, str, ImportRecord]]:
    found = []
    for record in analysis.imports:
        if record.is_runtime:
            heavy = find_heavy_module(record, config, first_party)
            if heavy is not None:
                found.append((heavy[0], heavy[1], record))
    return found


def _shortest_chains(
    start: str, runtime_edges: Mapping[str, Sequence[ImportEdge]]
) -> List[Tuple[str, Tuple[ImportEdge, ...]]]:
    """Breadth-first search from `start`, returning each reached path with its edge chain."""
    chains: Dict[str, Tuple[ImportEdge, ...]] = {start: ()}
    order: List[Tuple[str, Tuple[ImportEdge, ...]]] = []
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for edge in runtime_edges.get(current, ()):
            if edge.imported in chains:
                continue
            chain = chains[current] + (edge,)
            chains[edge.imported] = chain
            order.append((edge.imported, chain))
            queue.append(edge.imported)
    return order


def _transitive_finding(
    analysis: FileAnalysis,
    chain: Tuple[ImportEdge, ...],
    reached: FileAnalysis,
    record: ImportRecord,
    imported: str,
    heavy: str,
    config: ArchLintConfig,
    module_costs: Optional[Costs],
) -> Finding:
    cost = lookup_cost(module_costs, imported, heavy, reached.path)
    steps = [edge.describe() for edge in chain]
    steps.append(f"{reached.path}:{record.line} imports {imported}")
    first = chain[0]
    related = tuple(Location(edge.importer, edge.line, edge.column) for edge in chain)
    related += (Location(reached.path, record.line, record.column),)
    return Finding(
        rule_id="transitive-heavy-import",
        severity=config.severity_for("transitive-heavy-import"),
        location=Location(analysis.path, first.line, first.column),
        message=(
            f"protocol file reaches heavy module '{imported}' at import time through "
            f"{len(chain)} first-party import(s): {', '.join(steps)} ({describe_cost(cost)})"
        ),
        fix=(
            f"Defer one import on the chain (move it into a function or under "
            f"`if TYPE_CHECKING:`), starting with {reached.path}:{record.line}."
        ),
        cost=cost,
        related=related,
        data={
            "fingerprint": heavy,
            "modules": (analysis.module, imported),
            "chain": tuple(steps),
            "cost_module": imported,
        },
    )


def find_cycle_findings(
    components: Sequence[CycleComponent],
    config: ArchLintConfig,
    module_by_path: Mapping[str, str],
) -> Iterator[Finding]:
    for component in components:
        severity = _cycle_severity(component.kind, config)
        breaking_data = tuple(_edge_data(edge) for edge in component.breaking_edges)
        for cycle in component.cycles:
            yield _cycle_finding(cycle, component, severity, module_by_path, breaking_data)
        if component.omitted_cycles or not component.complete:
            yield _omitted_cycles_finding(component, severity, module_by_path)


def _cycle_severity(kind: CycleKind, config: ArchLintConfig) -> Severity:
    if kind is CycleKind.import_time:
        return config.severity_for("import-cycle")
    if kind is CycleKind.deferred:
        return DEFERRED_CYCLE_SEVERITY
    return TYPING_CYCLE_SEVERITY


def _cycle_finding(
    cycle: Cycle,
    component: CycleComponent,
    severity: Severity,
    module_by_path: Mapping[str, str],
    breaking_data: Tuple[Mapping[str, object], ...],
) -> Finding:
    first = cycle.edges[0]
    cycle_edges = set(cycle.edges)
    breaking = [edge for edge in component.breaking_edges if edge in cycle_edges]
    return Finding(
        rule_id="import-cycle",
        severity=severity,
        location=Location(first.importer, first.line, first.column),
        message=f"{cycle.kind.value} import cycle: {cycle.describe()}",
        fix=_breaking_fix(breaking, component),
        related=tuple(Location(edge.importer, edge.line, edge.column) for edge in cycle.edges),
        data={
            "fingerprint": f"{cycle.kind.value}:{cycle.describe()}",
            "modules": tuple(module_by_path.get(path, path) for path in cycle.paths),
            "cycle_kind": cycle.kind.value,
            "edges": tuple(_edge_data(edge) for edge in cycle.edges),
            "component_breaking_edges": breaking_data,
            "breaking_method": component.breaking_method.value,
        },
    )


def _omitted_cycles_finding(
    component: CycleComponent, severity: Severity, module_by_path: Mapping[str, str]
) -> Finding:
    count = str(component.omitted_cycles)
    if not component.complete:
        count = f"at least {count}"
    first = component.paths[0]
    return Finding(
        rule_id="import-cycle",
        severity=severity,
        location=Location(first, 0, 0),
        message=(
            f"{count} more {component.kind.value} import cycles among {len(component.paths)} "
            "files are not listed"
        ),
        fix=_breaking_fix(list(component.breaking_edges), component),
        related=tuple(Location(path) for path in component.paths),
        data={
            "fingerprint": f"{component.kind.value}:more:{','.join(component.paths)}",
            "modules": tuple(module_by_path.get(path, path) for path in component.paths),
            "cycle_kind": component.kind.value,
        },
    )


def _breaking_fix(breaking: Sequence[ImportEdge], component: CycleComponent) -> str:
    edges = ", ".join(edge.describe() for edge in breaking)
    total = len(component.breaking_edges)
    if component.breaking_method is BreakingMethod.exact:
        scope = f"a minimum set of {total} for its {len(component.paths)}-file component"
    else:
        scope = (
            f"a greedy estimate of {total} for its {len(component.paths)}-file component, "
            "which may not be minimal"
        )
    return f"Remove or defer {edges} (part of {scope})."


def _edge_data(edge: ImportEdge) -> Mapping[str, object]:
    return {
        "importer": edge.importer,
        "imported": edge.imported,
        "line": edge.line,
        "kind": edge.kind.value,
        "explicit": edge.explicit,
    }
