"""Findings that compare a measured binary with a reference: an A/B baseline or a stored file.

Both paths share the rules. New startup modules and more heavy imports block on their own,
because they do not depend on timing noise. A slower startup blocks only when the Mann-Whitney
test is significant and the shift reaches the minimum effect size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, List, Mapping, Optional, Sequence, Tuple

from perfguard.findings import Cost, Finding, Location, Severity
from perfguard.startup.clock import format_duration_ms
from perfguard.startup.importtime import find_loaded
from perfguard.startup.stats import Comparison, compare_samples

# Lists of module names in messages stop after this many, with an "and N more" tail.
MAX_LISTED = 10
# Imports that grew by less than this are left out of regression messages.
MIN_GROWTH_US = 1000


@dataclass(frozen=True)
class StartupSnapshot:
    """One side of a comparison: wall samples, module set and package times.

    `package_self_us` maps each top-level package to the summed self time of its modules, and
    `instructions` is an instruction count, or None if none was taken.
    """

    wall_ns: Tuple[int, ...]
    modules: frozenset[str]
    package_self_us: Mapping[str, int]
    instructions: Optional[int] = None


def compare_snapshots(
    *,
    reference: StartupSnapshot,
    current: StartupSnapshot,
    location: Location,
    heavy_modules: Sequence[str],
    alpha: float,
    min_effect: float,
    reference_name: str,
    deterministic_severity: Severity = Severity.error,
    instruction_margin: float = 0.02,
    instruction_severity: Severity = Severity.error,
) -> Tuple[Optional[Comparison], Tuple[Finding, ...]]:
    """Compare `current` against `reference`; return the timing comparison and findings.

    `deterministic_severity` applies to the module-set and heavy-count findings; callers lower
    it when the two sides ran on different interpreters, whose standard modules differ.
    Instruction counts that both sides have get an `instruction_severity` finding when they
    grew by more than `instruction_margin`, a fraction of the reference count.
    """
    findings: List[Finding] = []
    added = sorted(current.modules - reference.modules)
    if added:
        findings.append(
            Finding(
                rule_id="startup-modules-added",
                severity=deterministic_severity,
                location=location,
                message=(
                    f"startup now loads {len(added)} modules that the {reference_name} did "
                    f"not: {format_names(added)}"
                ),
                fix="Defer the new imports into the functions that use them.",
                data={"added": tuple(added)},
            )
        )
    findings.extend(
        _compare_heavy(
            reference, current, location, heavy_modules, reference_name, deterministic_severity
        )
    )
    findings.extend(
        _compare_instructions(
            reference, current, location, reference_name, instruction_severity, instruction_margin
        )
    )
    comparison: Optional[Comparison] = None
    if len(reference.wall_ns) >= 2 and len(current.wall_ns) >= 2:
        comparison = compare_samples(
            reference.wall_ns, current.wall_ns, alpha=alpha, min_effect=min_effect
        )
        if comparison.is_regression:
            findings.append(
                _regression_finding(comparison, reference, current, location, reference_name)
            )
    return comparison, tuple(findings)


def find_grown_imports(
    before: Mapping[str, int], after: Mapping[str, int], limit: int = 5
) -> Tuple[Tuple[str, int], ...]:
    """Return up to `limit` (package, growth µs) pairs that grew by MIN_GROWTH_US or more.

    A package missing from `before` counts as growing from 0. Largest growth comes first.
    """
    growth = [
        (package, after_us - before.get(package, 0))
        for package, after_us in after.items()
        if after_us - before.get(package, 0) >= MIN_GROWTH_US
    ]
    growth.sort(key=lambda item: (-item[1], item[0]))
    return tuple(growth[:limit])


def format_names(names: Sequence[str], limit: int = MAX_LISTED) -> str:
    listed = ", ".join(names[:limit])
    if len(names) > limit:
        listed += f" and {len(names) - limit} more"
    return listed


def find_heavy_packages(modules: Collection[str], heavy_modules: Sequence[str]) -> Tuple[str, ...]:
    """Return the heavy packages of which the module set contains the package or a submodule."""
    return tuple(sorted(p for p in heavy_modules if find_loaded(modules, p)))


def _compare_heavy(
    reference: StartupSnapshot,
    current: StartupSnapshot,
    location: Location,
    heavy_modules: Sequence[str],
    reference_name: str,
    severity: Severity,
) -> List[Finding]:
    before = find_heavy_packages(reference.modules, heavy_modules)
    after = find_heavy_packages(current.modules, heavy_modules)
    if len(after) <= len(before):
        return []
    new = sorted(set(after) - set(before))
    return [
        Finding(
            rule_id="heavy-import-count",
            severity=severity,
            location=location,
            message=(
                f"heavy imports grew from {len(before)} in the {reference_name} to "
                f"{len(after)}: {', '.join(new)} added"
            ),
            fix="Import the heavy package lazily, inside the code path that needs it.",
            data={"before": before, "after": after},
        )
    ]


def _compare_instructions(
    reference: StartupSnapshot,
    current: StartupSnapshot,
    location: Location,
    reference_name: str,
    severity: Severity,
    margin: float,
) -> List[Finding]:
    if not reference.instructions or current.instructions is None:
        return []
    growth = current.instructions / reference.instructions - 1.0
    if growth <= margin:
        return []
    return [
        Finding(
            rule_id="startup-instructions",
            severity=severity,
            location=location,
            message=(
                f"startup runs {growth:.1%} more instructions than the {reference_name} "
                f"({current.instructions:,} against {reference.instructions:,}, callgrind "
                f"with PYTHONHASHSEED=0), over the {margin:.0%} margin"
            ),
            fix="Find the new work in the importtime profile, or update the baseline if intended.",
            data={
                "before": reference.instructions,
                "after": current.instructions,
                "growth": growth,
            },
        )
    ]


def _regression_finding(
    comparison: Comparison,
    reference: StartupSnapshot,
    current: StartupSnapshot,
    location: Location,
    reference_name: str,
) -> Finding:
    grown = find_grown_imports(reference.package_self_us, current.package_self_us)
    message = (
        f"startup {format_duration_ms(comparison.candidate_median)} is "
        f"{comparison.relative_shift:.1%} slower than the {reference_name} "
        f"{format_duration_ms(comparison.baseline_median)} (shift "
        f"+{format_duration_ms(comparison.shift)}, one-sided Mann-Whitney p="
        f"{comparison.p_value:.2g}, threshold {comparison.min_effect:.0%})"
    )
    if grown:
        message += "; imports that grew: " + ", ".join(
            f"{package} +{format_duration_ms(us * 1000)}" for package, us in grown
        )
    return Finding(
        rule_id="startup-regression",
        severity=Severity.error,
        location=location,
        message=message,
        fix="Defer the imports that grew, or update the baseline if the slowdown is intended.",
        cost=Cost(ms=comparison.shift / 1e6),
        data={
            "grown_imports": grown,
            "p_value": comparison.p_value,
            "relative_shift": comparison.relative_shift,
        },
    )
