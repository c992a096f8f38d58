"""Rules that look at one file at a time: parse errors, heavy imports, guarded names, classes.

The `god-object` rule counts a class's lines from its first decorator (or the `class` line when
it has none) through its last line, so the docstring, comments and blank lines inside count.
A nested class counts toward each enclosing class and is also checked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from perfguard.archlint.config import RULES, ArchLintConfig
from perfguard.archlint.model import FileAnalysis, ImportRecord
from perfguard.findings import Cost, Finding, Location

_ANNOTATION_FIX = (
    "Add `from __future__ import annotations` or quote the annotation, so it is not evaluated "
    "at import time."
)
_RUNTIME_FIX = "Import the name at runtime, or move the use into a function body."
_INTROSPECTED_PREFIX = "annotation read by "


def find_parse_errors(analysis: FileAnalysis, config: ArchLintConfig) -> Iterator[Finding]:
    error = analysis.error
    if error is None:
        return
    where = f" at line {error.line}" if error.line else ""
    yield Finding(
        rule_id="parse-error",
        severity=config.severity_for("parse-error"),
        location=Location(analysis.path, error.line or 0, error.column or 0),
        message=f"cannot analyze the file: {error.type}{where}: {error.message}",
        fix="Fix the file so the target's interpreter can parse it, or exclude it from the run.",
        data={"fingerprint": error.type, "modules": (analysis.module,)},
    )


def find_heavy_imports(
    analysis: FileAnalysis,
    config: ArchLintConfig,
    *,
    first_party: AbstractSet[str],
    module_costs: Optional[Costs],
) -> Iterator[Finding]:
    """Report runtime imports of heavy modules in protocol files."""
    if analysis.error is not None or not config.is_protocol_path(analysis.path):
        return
    for record in analysis.imports:
        if not record.is_runtime:
            continue
        heavy = find_heavy_module(record, config, first_party)
        if heavy is None:
            continue
        imported, root = heavy
        cost = lookup_cost(module_costs, imported, root, analysis.path)
        guard = " inside try/except ImportError" if record.in_try_import_error else ""
        yield Finding(
            rule_id="heavy-import",
            severity=config.severity_for("heavy-import"),
            location=Location(analysis.path, record.line, record.column),
            message=(
                f"protocol file imports heavy module '{imported}' at import time{guard} "
                f"({describe_cost(cost)})"
            ),
            fix=(
                f"Move the import of '{imported}' under `if TYPE_CHECKING:` or into the function "
                "that uses it."
            ),
            cost=cost,
            data={
                "fingerprint": imported,
                "modules": (analysis.module, imported),
                "cost_module": imported,
            },
        )


def find_heavy_module(
    record: ImportRecord, config: ArchLintConfig, first_party: AbstractSet[str]
) -> Optional[Tuple[str, str]]:
    """Return (imported module, configured heavy module) when the import loads a heavy module.

    `sqlalchemy.orm` matches heavy `sqlalchemy`, but `numpyro` does not match `numpy`.
    Relative imports and first-party top-level names are never heavy.
    """
    if record.module is None or record.level > 0:
        return None
    if record.module.partition(".")[0] in first_party:
        return None
    for heavy in config.heavy_modules:
        if record.module == heavy or record.module.startswith(f"{heavy}."):
            return record.module, heavy
        if record.kind == "from" and heavy.startswith(f"{record.module}."):
            # `from sqlalchemy import orm` loads heavy `sqlalchemy.orm` when only it is heavy.
            if heavy[len(record.module) + 1 :] in record.names:
                return heavy, heavy
    return None


def find_guarded_names_at_runtime(
    analysis: FileAnalysis, config: ArchLintConfig
) -> Iterator[Finding]:
    for use in analysis.runtime_uses_of_typing_names:
        fix = _ANNOTATION_FIX if use.use == "annotation" else _RUNTIME_FIX
        if use.use.startswith(_INTROSPECTED_PREFIX):
            reader = use.use[len(_INTROSPECTED_PREFIX) :]
            fix = (
                f"Import '{use.name}' outside TYPE_CHECKING, because {reader} evaluates the "
                "annotation when the class is created, quoted or not."
            )
        yield Finding(
            rule_id="guarded-name-at-runtime",
            severity=config.severity_for("guarded-name-at-runtime"),
            location=Location(analysis.path, use.line, use.column),
            message=(
                f"'{use.name}' is imported only under TYPE_CHECKING but evaluated at import time "
                f"({use.use}), which raises NameError"
            ),
            fix=fix,
            data={"fingerprint": f"{use.name}:{use.use}", "modules": (analysis.module,)},
        )


def find_god_objects(analysis: FileAnalysis, config: ArchLintConfig) -> Iterator[Finding]:
    limit = config.class_line_limit
    for record in analysis.classes:
        if record.lines <= limit:
            continue
        yield Finding(
            rule_id="god-object",
            severity=config.severity_for("god-object"),
            location=Location(analysis.path, record.line, 0),
            message=f"class {record.qualname} has {record.lines} lines (limit {limit})",
            fix=f"Split {record.qualname} into smaller classes or move helpers to functions.",
            data={"fingerprint": record.qualname, "modules": (analysis.module,)},
        )


def find_invalid_suppressions(analysis: FileAnalysis, config: ArchLintConfig) -> Iterator[Finding]:
    for suppression in analysis.suppressions:
        problems: List[str] = []
        if not suppression.rules:
            problems.append("names no rule")
        unknown = [rule for rule in suppression.rules if rule not in RULES]
        if unknown:
            problems.append(f"names unknown rule {', '.join(repr(rule) for rule in unknown)}")
        if not suppression.reason:
            problems.append("gives no reason")
        if not problems:
            continue
        yield Finding(
            rule_id="invalid-suppression",
            severity=config.severity_for("invalid-suppression"),
            location=Location(analysis.path, suppression.line, 0),
            message=f"suppression comment {' and '.join(problems)}, so it is ignored",
            fix=(
                "Write `# perfguard: ignore[rule-id] reason`, with a known rule id and the "
                "reason the finding is acceptable."
            ),
            data={
                "fingerprint": ",".join(suppression.rules) + ":" + "; ".join(problems),
                "modules": (analysis.module,),
            },
        )


@dataclass(frozen=True)
class CostTable:
    """Measured costs per environment, and the environment that each importing file runs in.

    A module imported by files of two environments (interpreters or resolves) has one figure
    per environment, and each finding shows the figure of its own file's environment.
    """

    costs: Mapping[str, Mapping[str, Cost]]
    environment_of: Mapping[str, str]

    @classmethod
    def create(
        cls, measured: Iterable[Tuple[str, str, Cost]], environment_of: Mapping[str, str]
    ) -> "CostTable":
        costs: Dict[str, Dict[str, Cost]] = {}
        for environment, module, cost in measured:
            costs.setdefault(environment, {})[module] = cost
        return cls(costs, dict(environment_of))

    def for_path(self, path: str) -> Mapping[str, Cost]:
        return self.costs.get(self.environment_of.get(path, ""), {})


# Costs of one environment by module name, or a table with one such mapping per environment.
Costs = Union[Mapping[str, Cost], CostTable]


def lookup_cost(
    module_costs: Optional[Costs], module: str, root: str, importer_path: str
) -> Optional[Cost]:
    """Return the cost of `module` (else of its top-level package `root`) where `importer_path`
    imports it, or None when it was not measured."""
    if isinstance(module_costs, CostTable):
        module_costs = module_costs.for_path(importer_path)
    if not module_costs:
        return None
    return module_costs.get(module) or module_costs.get(root)


def describe_cost(cost: Optional[Cost]) -> str:
    if cost is None:
        return "startup cost not measured"
    if cost.ms is None and cost.mb is None:
        return f"startup cost {cost.note}" if cost.note else "startup cost not measured"
    parts = []
    if cost.ms is not None:
        parts.append(f"{cost.ms:.1f} ms")
    if cost.mb is not None:
        parts.append(f"{cost.mb:.1f} MB")
    return "startup cost " + ", ".join(parts)
