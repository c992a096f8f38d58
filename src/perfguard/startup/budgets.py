"""Startup budgets and `evaluate`, which turns a harness result into findings.

Rule ids: binary-failed, binary-timeout, startup-time, noisy-measurement, peak-memory,
launcher-overhead, prohibited-module, heavy-import-count, slow-import, startup-modules-added,
startup-instructions and startup-regression. Import times come from the separate importtime
runs, which run slower than the timed runs because of the profiling itself, so their budgets
are upper bounds in practice.
"""

from __future__ import annotations

import logging
import math
import shlex
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

from perfguard.findings import Cost, Finding, Location, Severity
from perfguard.startup.baseline import Baseline, compare_to_baseline, snapshot_variant
from perfguard.startup.clock import format_duration_ms
from perfguard.startup.errors import InvalidBudgets
from perfguard.startup.importtime import (
    ImportProfile,
    ModuleTiming,
    find_entry_nodes,
    find_loaded,
    sum_self_by_package,
    summarize_runs,
)
from perfguard.startup.regression import compare_snapshots, find_heavy_packages
from perfguard.startup.results import HarnessResult, VariantResult
from perfguard.startup.stats import (
    Comparison,
    Interval,
    find_noise_warning,
    median,
    median_ci,
    robust_cv,
)

logger = logging.getLogger(__name__)

DEFAULT_HEAVY_MODULES = ("asyncpg", "numpy", "pandas", "sqlalchemy", "torch")
BYTES_PER_MB = 1_000_000


@dataclass(frozen=True)
class Budgets:
    """Limits for one binary. Memory is in megabytes of 10^6 bytes.

    `heavy_modules` are the packages counted against `max_heavy_imports`. A regression needs a
    one-sided p-value below `regression_alpha` and a median shift of at least
    `regression_min_effect` (a fraction of the reference median). A pex launcher whose own
    imports take `launcher_ms` or more gets a warning that suggests a faster layout. An
    instruction count blocks when it grew by more than `instruction_margin` over the reference.
    """

    startup_ms: float = 500.0
    single_import_ms: float = 100.0
    peak_memory_mb: float = 100.0
    max_heavy_imports: int = 3
    heavy_modules: Tuple[str, ...] = DEFAULT_HEAVY_MODULES
    noise_threshold: float = 0.10
    regression_alpha: float = 0.01
    regression_min_effect: float = 0.05
    launcher_ms: float = 100.0
    instruction_margin: float = 0.02

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be a positive number, got {getattr(self, name)!r}"
            for name in (
                "startup_ms",
                "single_import_ms",
                "peak_memory_mb",
                "noise_threshold",
                "regression_alpha",
                "regression_min_effect",
                "launcher_ms",
                "instruction_margin",
            )
            if not _is_positive(getattr(self, name))
        ]
        if (
            isinstance(self.max_heavy_imports, bool)
            or not isinstance(self.max_heavy_imports, int)
            or self.max_heavy_imports < 0
        ):
            problems.append(
                f"max_heavy_imports must be an integer >= 0, got " f"{self.max_heavy_imports!r}"
            )
        if problems:
            raise InvalidBudgets("invalid startup budgets: " + "; ".join(problems))


@dataclass(frozen=True)
class StartupReport:
    """The findings for one binary plus the figures they were computed from.

    Times are in nanoseconds and memory in bytes; None means not measured because every run
    failed. `peak_rss_bytes` is the kernel's peak RSS of the largest single process (median of
    the timed runs), and `tree_rss_bytes` the largest sampled sum over the whole process tree,
    read through `tree_rss_source`, or None when it was not measured. `launcher_ns` is the
    import time of the pex launcher in the importtime run, or None when no launcher ran. It
    counts in the startup time but not in the import checks. `instructions` is the callgrind
    count of one run, if one was taken. `profile` is the first importtime profile with the
    launcher's imports, for rendering.
    """

    binary: str
    findings: Tuple[Finding, ...]
    sample_count: int
    converged: bool
    median_ns: Optional[float]
    ci_ns: Optional[Interval]
    robust_cv: Optional[float]
    peak_rss_bytes: Optional[float]
    module_count: int
    heavy_packages: Tuple[str, ...]
    comparison: Optional[Comparison] = None
    launcher_ns: Optional[float] = None
    launcher_processes: int = 0
    instructions: Optional[int] = None
    tree_rss_bytes: Optional[float] = None
    tree_rss_source: Optional[str] = None
    profile: Optional[ImportProfile] = field(default=None, compare=False)

    @property
    def blocking(self) -> bool:
        return any(finding.blocking for finding in self.findings)

    def format_text(self) -> str:
        """Render the report as plain text: a summary line, then one line per finding."""
        lines = [f"{self.binary}: {self._summary()}"]
        lines.extend("  " + finding.format_line() for finding in self.findings)
        status = "FAILED" if self.blocking else "passed"
        lines.append(f"{self.binary}: startup check {status} with {len(self.findings)} findings")
        return "\n".join(lines)

    def _summary(self) -> str:
        if self.median_ns is None or self.ci_ns is None:
            return "no successful timed runs"
        parts = [
            f"startup {format_duration_ms(self.median_ns)} "
            f"({self.ci_ns.confidence:.0%} CI {_format_ci(self.ci_ns)}, "
            f"{self.sample_count} runs{'' if self.converged else ', not converged'})"
        ]
        if self.peak_rss_bytes is not None:
            parts.append(f"peak RSS {self.peak_rss_bytes / BYTES_PER_MB:.1f} MB in one process")
            if self.tree_rss_bytes is None:
                parts.append("process tree memory not measured")
            else:
                parts.append(f"{self.tree_rss_bytes / BYTES_PER_MB:.1f} MB over the process tree")
        parts.append(f"{self.module_count} modules")
        if self.instructions is not None:
            parts.append(f"{self.instructions / 1e6:,.1f} M instructions")
        if self.comparison is not None:
            parts.append(
                f"{self.comparison.relative_shift:+.1%} against the reference (one-sided "
                f"p={self.comparison.p_value:.2g})"
            )
        if self.launcher_ns is not None:
            parts.append(
                f"pex bootstrap {format_duration_ms(self.launcher_ns)} of imports in "
                f"{_count_processes(self.launcher_processes)}"
            )
        return ", ".join(parts)


def evaluate(
    result: HarnessResult,
    budgets: Optional[Budgets] = None,
    prohibited: Sequence[str] = DEFAULT_HEAVY_MODULES,
    baseline: Optional[Baseline] = None,
    *,
    binary: Optional[str] = None,
) -> StartupReport:
    """Check a harness result against budgets (default `Budgets()`), prohibited packages and a
    reference.

    In A/B results the checked variant is the candidate, and it is compared with the
    interleaved baseline variant. Otherwise the checked variant is the baseline variant, and it
    is compared with the stored `baseline` if one is given. `binary` names the binary in
    findings. It defaults to the stored baseline's name, then to the command line.
    """
    budgets = budgets or Budgets()
    variant = result.measured
    name = binary or (baseline.binary if baseline else shlex.join(variant.command))
    location = Location(name)
    findings: List[Finding] = list(_check_failures(result, location))
    profiles = variant.profiles
    profile = profiles[0] if profiles else None
    modules = variant.loaded_modules
    timings = summarize_runs(profiles)
    findings.extend(_check_timing(variant, budgets, location))
    findings.extend(_check_memory(variant, budgets, location))
    findings.extend(_check_launcher(variant, budgets, location))
    if profile is not None:
        findings.extend(_check_prohibited(profile, modules, prohibited, location))
        findings.extend(
            _check_slow_imports(profile, timings.values(), budgets, prohibited, location)
        )
    heavy = find_heavy_packages(modules, budgets.heavy_modules)
    if len(heavy) > budgets.max_heavy_imports:
        findings.append(
            Finding(
                rule_id="heavy-import-count",
                severity=Severity.error,
                location=location,
                message=(
                    f"startup loads {len(heavy)} heavy packages ({', '.join(heavy)}), over the "
                    f"budget of {budgets.max_heavy_imports}"
                ),
                fix="Import heavy packages lazily, inside the code paths that need them.",
                data={"heavy_packages": heavy},
            )
        )
    comparison, compared = _compare(result, baseline, budgets, location)
    findings.extend(compared)
    walls = variant.wall_ns
    rss = variant.max_rss_bytes
    full_profiles = variant.full_profiles
    launcher_us = variant.launcher_us
    return StartupReport(
        binary=name,
        findings=tuple(sorted(findings, key=_finding_order)),
        sample_count=len(walls),
        converged=variant.converged,
        median_ns=median(walls) if walls else None,
        ci_ns=median_ci(walls) if walls else None,
        robust_cv=robust_cv(walls) if walls else None,
        peak_rss_bytes=median(rss) if rss else None,
        module_count=len(modules),
        heavy_packages=heavy,
        comparison=comparison,
        launcher_ns=launcher_us * 1000.0 if launcher_us is not None else None,
        launcher_processes=full_profiles[0].launcher_process_count if full_profiles else 0,
        instructions=variant.instructions,
        tree_rss_bytes=variant.tree_rss_bytes,
        tree_rss_source=variant.tree_rss_source,
        profile=full_profiles[0] if full_profiles else None,
    )


def _check_failures(result: HarnessResult, location: Location) -> List[Finding]:
    findings = []
    variants = [("binary", result.measured)]
    if result.candidate is not None:
        variants.append(("baseline binary", result.baseline))
    for label, variant in variants:
        for failure in variant.failures:
            timeout = failure.kind == "timeout"
            message = f"{label} {failure.describe()} during a {failure.phase} run"
            if failure.stderr_tail.strip():
                message += f"; stderr ends with: {failure.stderr_tail.strip()[-300:]}"
            findings.append(
                Finding(
                    rule_id="binary-timeout" if timeout else "binary-failed",
                    severity=Severity.critical,
                    location=location,
                    message=message,
                    fix="Run the command by hand with the same environment to see the failure.",
                    data={"failure": failure, "command": variant.command},
                )
            )
    return findings


def _check_timing(variant: VariantResult, budgets: Budgets, location: Location) -> List[Finding]:
    walls = variant.wall_ns
    if not walls:
        return []
    findings = []
    center = median(walls)
    interval = median_ci(walls)
    budget_ns = budgets.startup_ms * 1e6
    if center > budget_ns:
        beyond_noise = interval.low > budget_ns
        qualifier = "" if beyond_noise else ", within its measured uncertainty of the budget"
        findings.append(
            Finding(
                rule_id="startup-time",
                severity=Severity.error if beyond_noise else Severity.warning,
                location=location,
                message=(
                    f"startup {format_duration_ms(center)} ({interval.confidence:.0%} CI "
                    f"{_format_ci(interval)}) is over the {budgets.startup_ms:g} ms "
                    f"budget{qualifier}"
                ),
                fix="Find the slowest imports in the importtime profile and defer them.",
                cost=Cost(ms=center / 1e6),
            )
        )
    noise = find_noise_warning(walls, budgets.noise_threshold)
    if noise is not None or not variant.converged:
        message = noise or (
            f"timings did not converge to the target confidence interval in " f"{len(walls)} runs"
        )
        findings.append(
            Finding(
                rule_id="noisy-measurement",
                severity=Severity.warning,
                location=location,
                message=message,
                fix="Run on an idle machine, or raise max_runs.",
            )
        )
    return findings


def _check_memory(variant: VariantResult, budgets: Budgets, location: Location) -> List[Finding]:
    """Check the larger of the kernel's peak RSS and the sampled process-tree sum."""
    rss = variant.max_rss_bytes
    if not rss:
        return []
    kernel_peak = median(rss)
    tree_peak = variant.tree_rss_bytes
    if tree_peak is not None and tree_peak > kernel_peak:
        peak = float(tree_peak)
        figure = (
            f"peak RSS {peak / BYTES_PER_MB:.1f} MB summed over the process tree (largest of "
            f"{variant.tree_rss_samples} samples from {variant.tree_rss_source} in one run, "
            f"while the largest single process peaked at {kernel_peak / BYTES_PER_MB:.1f} MB)"
        )
    else:
        peak = kernel_peak
        figure = (
            f"peak RSS {peak / BYTES_PER_MB:.1f} MB in the largest single process (median of "
            f"{len(rss)} runs)"
        )
    if peak <= budgets.peak_memory_mb * BYTES_PER_MB:
        return []
    return [
        Finding(
            rule_id="peak-memory",
            severity=Severity.error,
            location=location,
            message=f"{figure} is over the {budgets.peak_memory_mb:g} MB budget",
            fix=(
                "Defer imports of large packages, avoid building big objects at import time, "
                "and start child processes only when they are needed."
            ),
            cost=Cost(mb=peak / BYTES_PER_MB),
            data={"kernel_peak_bytes": kernel_peak, "tree_peak_bytes": tree_peak},
        )
    ]


def _check_launcher(variant: VariantResult, budgets: Budgets, location: Location) -> List[Finding]:
    launcher_us = variant.launcher_us
    if launcher_us is None or launcher_us < budgets.launcher_ms * 1000:
        return []
    processes = variant.full_profiles[0].launcher_process_count
    return [
        Finding(
            rule_id="launcher-overhead",
            severity=Severity.warning,
            location=location,
            message=(
                f"the pex launcher spends {format_duration_ms(launcher_us * 1000)} importing its "
                f"own code in {_count_processes(processes)} before the program starts, "
                f"at least the {budgets.launcher_ms:g} ms threshold; this time is part of the "
                f"startup but not of the import checks"
            ),
            fix=(
                'Set `execution_mode="venv"` on the pex_binary, which skips most of the '
                "bootstrap once the venv exists, and drop requirements that the entry point does "
                "not import."
            ),
            cost=Cost(ms=launcher_us / 1000, note="launcher import time, from -X importtime"),
            data={"launcher_us": launcher_us, "processes": processes},
        )
    ]


def _check_prohibited(
    profile: ImportProfile,
    modules: frozenset[str],
    prohibited: Sequence[str],
    location: Location,
) -> List[Finding]:
    findings = []
    for package in sorted(set(prohibited)):
        loaded = find_loaded(modules, package)
        if not loaded:
            continue
        entries = find_entry_nodes(profile, package)
        chain = profile.chain_to(entries[0]) if entries else (loaded[0],)
        cost_us = sum(node.cumulative_us for node in entries)
        importer = chain[-2] if len(chain) > 1 else "the entry point"
        findings.append(
            Finding(
                rule_id="prohibited-module",
                severity=Severity.critical,
                location=location,
                message=(
                    f"startup imports prohibited package {package} "
                    f"({format_duration_ms(cost_us * 1000)} with its dependencies) via "
                    f"{' -> '.join(chain)}"
                ),
                fix=f"Move the import of {chain[-1]} in {importer} into the function that uses it.",
                cost=Cost(ms=cost_us / 1000, note="cumulative import time, from -X importtime"),
                data={"package": package, "chain": chain, "modules": loaded},
            )
        )
    return findings


def _check_slow_imports(
    profile: ImportProfile,
    timings: Iterable[ModuleTiming],
    budgets: Budgets,
    prohibited: Sequence[str],
    location: Location,
) -> List[Finding]:
    findings = []
    budget_us = budgets.single_import_ms * 1000
    reported = set(prohibited)
    for package, self_us in sum_self_by_package(timings).items():
        if self_us < budget_us or package in reported:
            continue
        entries = find_entry_nodes(profile, package)
        chain = profile.chain_to(entries[0]) if entries else (package,)
        findings.append(
            Finding(
                rule_id="slow-import",
                severity=Severity.error,
                location=location,
                message=(
                    f"importing {package} takes {format_duration_ms(self_us * 1000)} of its own "
                    f"(excluding other packages), over the {budgets.single_import_ms:g} ms "
                    f"budget; imported via {' -> '.join(chain)}"
                ),
                fix=f"Import {package} lazily, or trim what it does at import time.",
                cost=Cost(ms=self_us / 1000, note="summed self import time, from -X importtime"),
                data={"package": package, "chain": chain},
            )
        )
    return findings


def _compare(
    result: HarnessResult, baseline: Optional[Baseline], budgets: Budgets, location: Location
) -> Tuple[Optional[Comparison], Tuple[Finding, ...]]:
    if result.candidate is not None:
        if result.baseline.failures or result.candidate.failures:
            return None, ()
        return compare_snapshots(
            reference=snapshot_variant(result.baseline),
            current=snapshot_variant(result.candidate),
            location=location,
            heavy_modules=budgets.heavy_modules,
            alpha=budgets.regression_alpha,
            min_effect=budgets.regression_min_effect,
            reference_name="baseline binary",
            instruction_margin=budgets.instruction_margin,
        )
    if baseline is not None and not result.baseline.failures:
        return compare_to_baseline(
            baseline,
            result,
            budgets.heavy_modules,
            alpha=budgets.regression_alpha,
            min_effect=budgets.regression_min_effect,
            location=location,
            instruction_margin=budgets.instruction_margin,
        )
    return None, ()


def _count_processes(count: int) -> str:
    return f"{count} interpreter process" + ("" if count == 1 else "es")


def _format_ci(interval: Interval) -> str:
    # Narrow intervals get one decimal, so that they do not print as "100-100 ms".
    digits = 1 if interval.high - interval.low < 10e6 else 0
    return f"{interval.low / 1e6:.{digits}f}-{interval.high / 1e6:.{digits}f} ms"


def _finding_order(finding: Finding) -> Tuple[int, str, str]:
    return (finding.severity.rank, finding.rule_id, finding.message)


def _is_positive(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0
