"""Text and JSON reports for arch-lint results, and the process exit codes."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any, Dict, List, Optional, Sequence

from perfguard.archlint.baseline import BaselineResult
from perfguard.archlint.file_rules import describe_cost
from perfguard.archlint.rules import ArchLintResult
from perfguard.findings import Cost, Finding, Severity

EXIT_OK = 0
"""No blocking findings."""
EXIT_BLOCKING = 1
"""At least one blocking (critical or error) finding that no suppression or baseline accepts."""
EXIT_USAGE = 2
"""Invalid configuration, arguments, baseline or probe output."""

JSON_SCHEMA_VERSION = 1

# The JSON report, as field name to description. A test checks that reports contain exactly
# these top-level and per-finding keys.
SCHEMA: Dict[str, Any] = {
    "schema_version": "int: version of this layout, currently 1",
    "files_analyzed": "int: number of probed files",
    "blocking": "bool: true when the exit code is 1",
    "counts": "object: severity name to number of reported findings",
    "measured_cost_ms": (
        "number or null: measured cost of the modules findings name, each once, at its largest "
        "figure across environments"
    ),
    "measured_cost_mb": "number or null: summed peak-memory growth of those modules, each once",
    "unmeasured_modules": "list of str: modules that findings name but that were not measured",
    "findings": {
        "rule_id": "str: stable rule slug",
        "severity": "str: critical, error, warning or info",
        "path": "str: file path as given to the engine",
        "line": "int: 1-based line, 0 when unknown",
        "column": "int: 1-based column, 0 when unknown",
        "message": "str: one-line description",
        "fix": "str: one-line suggestion",
        "cost": "object or null: {ms, mb, note}, null when not measured",
        "related": "list of {path, line, column}: edges of a chain or cycle",
        "fingerprint": "str: line-independent identity used by baselines",
    },
    "suppressed": "list of {finding, reason}: findings accepted by a comment or exception",
    "baseline": "object or null: {matched, stale} counts and stale entries when a baseline is used",
}


def exit_code_for(findings: Sequence[Finding]) -> int:
    return EXIT_BLOCKING if any(finding.blocking for finding in findings) else EXIT_OK


def reported_findings(
    result: ArchLintResult, baseline_result: Optional[BaselineResult] = None
) -> Sequence[Finding]:
    return result.findings if baseline_result is None else baseline_result.new


def render_text(result: ArchLintResult, baseline_result: Optional[BaselineResult] = None) -> str:
    """Render findings grouped by file, each with its fix indented below, then a summary."""
    findings = sorted(reported_findings(result, baseline_result), key=Finding.sort_key)
    lines: List[str] = []
    for _, group in groupby(findings, key=lambda finding: finding.location.path):
        for finding in group:
            lines.append(finding.format_line())
            if finding.fix:
                lines.append(f"    fix: {finding.fix}")
        lines.append("")
    lines.extend(_summary_lines(result, findings, baseline_result))
    return "\n".join(lines) + "\n"


def _summary_lines(
    result: ArchLintResult,
    findings: Sequence[Finding],
    baseline_result: Optional[BaselineResult],
) -> List[str]:
    counts = _count(findings)
    per_severity = ", ".join(f"{counts[severity.value]} {severity.value}" for severity in Severity)
    lines = [
        f"arch-lint: {len(findings)} findings in {result.files_analyzed} files ({per_severity}).",
        f"Total measured startup penalty: {_format_total_cost(findings)}.",
    ]
    if result.suppressed:
        lines.append(f"{len(result.suppressed)} findings suppressed.")
    if baseline_result is not None:
        lines.append(
            f"Baseline: {len(baseline_result.matched)} accepted, "
            f"{len(baseline_result.stale)} stale entries."
        )
        for entry in baseline_result.stale:
            lines.append(f"  stale: {entry.path}: {entry.rule_id} {entry.fingerprint}")
    return lines


def render_json(result: ArchLintResult, baseline_result: Optional[BaselineResult] = None) -> str:
    """Render the report described by SCHEMA, with sorted keys and findings."""
    findings = sorted(reported_findings(result, baseline_result), key=Finding.sort_key)
    baseline = None
    if baseline_result is not None:
        baseline = {
            "matched": len(baseline_result.matched),
            "stale": [
                {"rule_id": entry.rule_id, "path": entry.path, "fingerprint": entry.fingerprint}
                for entry in baseline_result.stale
            ],
        }
    document = {
        "schema_version": JSON_SCHEMA_VERSION,
        "files_analyzed": result.files_analyzed,
        "blocking": exit_code_for(findings) == EXIT_BLOCKING,
        "counts": _count(findings),
        "measured_cost_ms": _total_cost_ms(findings),
        "measured_cost_mb": _total_cost_mb(findings),
        "unmeasured_modules": _unmeasured_modules(findings),
        "findings": [finding_to_json(finding) for finding in findings],
        "suppressed": [
            {"finding": finding_to_json(item.finding), "reason": item.reason}
            for item in result.suppressed
        ],
        "baseline": baseline,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def finding_to_json(finding: Finding) -> Dict[str, Any]:
    cost = finding.cost
    return {
        "rule_id": finding.rule_id,
        "severity": finding.severity.value,
        "path": finding.location.path,
        "line": finding.location.line,
        "column": finding.location.column,
        "message": finding.message,
        "fix": finding.fix,
        "cost": None if cost is None else {"ms": cost.ms, "mb": cost.mb, "note": cost.note},
        "related": [
            {"path": location.path, "line": location.line, "column": location.column}
            for location in finding.related
        ],
        "fingerprint": str(finding.data.get("fingerprint", finding.message)),
    }


def _count(findings: Sequence[Finding]) -> Dict[str, int]:
    counts = {severity.value: 0 for severity in Severity}
    for finding in findings:
        counts[finding.severity.value] += 1
    return counts


def _costs_by_module(findings: Sequence[Finding]) -> Dict[str, Optional[Cost]]:
    """Map each module that findings name to its cost, so totals count every module once.

    A module measured in several environments counts with its largest figure.
    """
    per_module: Dict[str, Optional[Cost]] = {}
    for finding in findings:
        module = finding.data.get("cost_module")
        if not module:
            continue
        current = per_module.get(str(module))
        cost = finding.cost
        if (
            current is None
            or current.ms is None
            or (cost is not None and cost.ms is not None and cost.ms > current.ms)
        ):
            per_module[str(module)] = cost if cost is not None else current
    return per_module


def _total_cost_ms(findings: Sequence[Finding]) -> Optional[float]:
    figures = [c.ms for c in _costs_by_module(findings).values() if c and c.ms is not None]
    return round(sum(figures), 3) if figures else None


def _total_cost_mb(findings: Sequence[Finding]) -> Optional[float]:
    figures = [c.mb for c in _costs_by_module(findings).values() if c and c.mb is not None]
    return round(sum(figures), 3) if figures else None


def _unmeasured_modules(findings: Sequence[Finding]) -> List[str]:
    costs = _costs_by_module(findings)
    return sorted(module for module, cost in costs.items() if cost is None or cost.ms is None)


def _format_total_cost(findings: Sequence[Finding]) -> str:
    total_ms = _total_cost_ms(findings)
    unmeasured = _unmeasured_modules(findings)
    if total_ms is None:
        text = "not measured"
    else:
        measured = len(_costs_by_module(findings)) - len(unmeasured)
        text = describe_cost(Cost(ms=total_ms, mb=_total_cost_mb(findings)))
        text = text.replace("startup cost ", "") + f" over {_modules(measured)}"
        text += " (an upper bound where they share dependencies)"
    if unmeasured:
        text += f"; {_modules(len(unmeasured))} not measured: {', '.join(unmeasured)}"
    return text


def _modules(count: int) -> str:
    return f"{count} module" if count == 1 else f"{count} modules"
