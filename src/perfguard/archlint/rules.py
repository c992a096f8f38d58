"""The arch-lint entry point: run every rule, then apply suppressions and allowed exceptions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Collection, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from perfguard.archlint.config import ArchLintConfig
from perfguard.archlint.cycles import CycleComponent, find_cycles
from perfguard.archlint.file_rules import (
    Costs,
    find_god_objects,
    find_guarded_names_at_runtime,
    find_heavy_imports,
    find_invalid_suppressions,
    find_parse_errors,
)
from perfguard.archlint.graph import ImportGraph, build_edges_from_imports, build_import_graph
from perfguard.archlint.graph_rules import find_cycle_findings, find_transitive_heavy_imports
from perfguard.archlint.model import FileAnalysis, Suppression
from perfguard.findings import Finding, Severity

logger = logging.getLogger(__name__)

# A suppression comment cannot hide the finding about itself.
_UNSUPPRESSIBLE_RULES = frozenset({"invalid-suppression"})


@dataclass(frozen=True)
class SuppressedFinding:
    """A finding accepted by a suppression comment or an allowed exception, and why."""

    finding: Finding
    reason: str


@dataclass(frozen=True)
class ArchLintResult:
    """Sorted findings that count, the ones that were suppressed, and the graph used."""

    findings: Tuple[Finding, ...]
    suppressed: Tuple[SuppressedFinding, ...]
    files_analyzed: int
    graph: ImportGraph
    cycle_components: Tuple[CycleComponent, ...]

    @property
    def counts(self) -> Dict[str, int]:
        """Count findings per severity name, including severities with no findings."""
        counts = {severity.value: 0 for severity in Severity}
        for finding in self.findings:
            counts[finding.severity.value] += 1
        return counts

    @property
    def blocking(self) -> bool:
        return any(finding.blocking for finding in self.findings)


def analyze(
    files: Sequence[FileAnalysis],
    config: ArchLintConfig,
    *,
    edges: Optional[Mapping[str, Sequence[str]]] = None,
    focus_paths: Optional[Collection[str]] = None,
    module_costs: Optional[Costs] = None,
    graph: Optional[ImportGraph] = None,
    cycle_components: Optional[Sequence[CycleComponent]] = None,
) -> ArchLintResult:
    """Run every arch-lint rule over probed files.

    Args:
        files: one probe analysis per source file.
        config: validated settings.
        edges: importer path to imported paths, such as Pants's dependency graph. When None,
            edges come from the probed imports that resolve to other files in `files`.
        focus_paths: when given, only findings in these files and cycles through them are
            reported. The graph and cycles are still computed over all files.
        module_costs: measured startup cost per module, attached to heavy-import findings, or
            a `CostTable` with one figure per module and environment.
        graph: the result of `build_import_graph(files, edges)`, when the caller already has
            it. `edges` is then ignored.
        cycle_components: the result of `find_cycles(graph, focus_paths=focus_paths)`, when
            the caller already has it, for example from a build cache.
    """
    if graph is None:
        if edges is None:
            edges = build_edges_from_imports(files)
        graph = build_import_graph(files, edges)
    if cycle_components is None:
        components = find_cycles(graph, focus_paths=focus_paths)
    else:
        components = tuple(cycle_components)
    first_party = _first_party_names(files, config)
    module_by_path = {analysis.path: analysis.module for analysis in files}

    raw: List[Finding] = []
    for analysis in files:
        raw.extend(find_parse_errors(analysis, config))
        raw.extend(
            find_heavy_imports(analysis, config, first_party=first_party, module_costs=module_costs)
        )
        raw.extend(find_guarded_names_at_runtime(analysis, config))
        raw.extend(find_god_objects(analysis, config))
        raw.extend(find_invalid_suppressions(analysis, config))
    raw.extend(
        find_transitive_heavy_imports(
            files, graph, config, first_party=first_party, module_costs=module_costs
        )
    )
    if focus_paths is not None:
        focus = set(focus_paths)
        raw = [finding for finding in raw if finding.location.path in focus]
    raw.extend(find_cycle_findings(components, config, module_by_path))

    kept, suppressed = _apply_suppressions(raw, files, config)
    logger.debug(
        "Arch-lint checked %d files: %d findings, %d suppressed.",
        len(files),
        len(kept),
        len(suppressed),
    )
    return ArchLintResult(
        findings=tuple(sorted(kept, key=Finding.sort_key)),
        suppressed=tuple(sorted(suppressed, key=lambda item: item.finding.sort_key())),
        files_analyzed=len(files),
        graph=graph,
        cycle_components=components,
    )


def _first_party_names(files: Sequence[FileAnalysis], config: ArchLintConfig) -> Set[str]:
    names = set(config.first_party_modules)
    names.update(analysis.module.partition(".")[0] for analysis in files if analysis.module)
    return names


def _apply_suppressions(
    findings: Sequence[Finding], files: Sequence[FileAnalysis], config: ArchLintConfig
) -> Tuple[List[Finding], List[SuppressedFinding]]:
    comments = _valid_suppressions(files)
    kept: List[Finding] = []
    suppressed: List[SuppressedFinding] = []
    for finding in findings:
        reason = _suppression_reason(finding, comments, config)
        if reason is None:
            kept.append(finding)
        else:
            suppressed.append(SuppressedFinding(finding, reason))
    return kept, suppressed


def _valid_suppressions(
    files: Sequence[FileAnalysis],
) -> Dict[Tuple[str, int], List[Suppression]]:
    """Index usable suppressions by (path, line). Ones without a reason do not suppress."""
    index: Dict[Tuple[str, int], List[Suppression]] = {}
    for analysis in files:
        for suppression in analysis.suppressions:
            if suppression.reason and suppression.rules:
                index.setdefault((analysis.path, suppression.line), []).append(suppression)
    return index


def _suppression_reason(
    finding: Finding,
    comments: Mapping[Tuple[str, int], List[Suppression]],
    config: ArchLintConfig,
) -> Optional[str]:
    if finding.rule_id in _UNSUPPRESSIBLE_RULES:
        return None
    for location in (finding.location,) + finding.related:
        for suppression in comments.get((location.path, location.line), ()):
            if finding.rule_id in suppression.rules:
                return f"suppressed at {location}: {suppression.reason}"
    modules = tuple(finding.data.get("modules", ()))
    for exception in config.allowed_exceptions:
        if exception.matches(rule_id=finding.rule_id, path=finding.location.path, modules=modules):
            return f"allowed by exception `{exception.entry}`"
    return None
