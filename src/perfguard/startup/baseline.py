"""Stored startup baselines: one JSON file per binary, written atomically and read strictly.

The file is meant to live in version control, so it is formatted for small diffs: keys are
sorted, each module's times sit on one line, and the file ends with a newline.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from perfguard.findings import Finding, Location, Severity
from perfguard.startup.clock import Clock, SystemClock
from perfguard.startup.errors import BaselineMismatch, BaselineNotFound, CorruptBaseline
from perfguard.startup.importtime import ModuleTiming, sum_self_by_package, summarize_runs
from perfguard.startup.regression import StartupSnapshot, compare_snapshots, find_heavy_packages
from perfguard.startup.results import HarnessResult, VariantResult
from perfguard.startup.stats import Comparison, median, median_ci, robust_cv

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class StoredBinary:
    """A stored copy of the baseline's binary.

    `digest` names the folder that contains the build's files, and `path` is the file to run,
    relative to that folder.
    """

    digest: str
    path: str


@dataclass(frozen=True)
class Baseline:
    """The recorded startup of one binary.

    Times are in nanoseconds except module times, which are in microseconds as importtime
    reports them. `modules` maps each loaded module to its (self, cumulative) import time.
    `instruction_counter` names the tool that counted `instructions`. Baselines written before
    it was recorded have None there, and their counts came from cachegrind, which missed the
    stages of a process that execs. `tree_rss_bytes` is the sampled peak over the process tree.
    """

    binary: str
    recorded_at: str
    samples_ns: Tuple[int, ...]
    median_ns: float
    ci_low_ns: float
    ci_high_ns: float
    robust_cv: float
    peak_rss_bytes: Optional[float]
    modules: Mapping[str, Tuple[int, int]]
    heavy_packages: Tuple[str, ...]
    environment: Mapping[str, Any]
    instructions: Optional[int] = None
    instruction_counter: Optional[str] = None
    tree_rss_bytes: Optional[float] = None
    stored_binary: Optional[StoredBinary] = None

    def snapshot(self) -> StartupSnapshot:
        timings = [
            ModuleTiming(name, self_us, cumulative_us, 1)
            for name, (self_us, cumulative_us) in self.modules.items()
        ]
        return StartupSnapshot(
            wall_ns=self.samples_ns,
            modules=frozenset(self.modules),
            package_self_us=sum_self_by_package(timings),
            instructions=self.instructions,
        )


def build_baseline(
    binary: str,
    result: HarnessResult,
    heavy_modules: Sequence[str],
    clock: Optional[Clock] = None,
) -> Baseline:
    """Build a baseline from the measured variant of a successful harness result.

    Raises ValueError if the binary had failed runs or no timed samples, because a baseline of
    a failing binary would hide the failure.
    """
    variant = result.measured
    if variant.failures or not variant.samples:
        raise ValueError(
            f"cannot record a baseline for {binary}: the binary "
            f"{variant.failures[0].describe() if variant.failures else 'has no timed runs'}"
        )
    walls = variant.wall_ns
    interval = median_ci(walls)
    timings = summarize_runs(variant.profiles)
    # Modules loaded without an importtime line (for example those imported before profiling
    # starts) get zero times, so the stored module set matches the checked one.
    modules = {name: (0, 0) for name in variant.loaded_modules}
    modules.update(
        (name, (t.self_us, t.cumulative_us))
        for name, t in timings.items()
        if name in variant.loaded_modules or not variant.loaded_modules
    )
    modules = dict(sorted(modules.items()))
    return Baseline(
        binary=binary,
        recorded_at=(clock or SystemClock()).now().isoformat(timespec="seconds"),
        samples_ns=tuple(sorted(walls)),
        median_ns=median(walls),
        ci_low_ns=interval.low,
        ci_high_ns=interval.high,
        robust_cv=round(robust_cv(walls), 6),
        peak_rss_bytes=median(variant.max_rss_bytes),
        modules=modules,
        heavy_packages=find_heavy_packages(modules, heavy_modules),
        environment=_stable_environment(result),
        instructions=variant.instructions,
        instruction_counter=variant.instruction_counter,
        tree_rss_bytes=variant.tree_rss_bytes,
    )


def _stable_environment(result: HarnessResult) -> Dict[str, Any]:
    # Load averages change on every run, so they would only add noise to baseline diffs.
    environment = dataclasses.asdict(result.environment)
    environment.pop("loadavg", None)
    environment.pop("loadavg_after", None)
    return environment


def snapshot_variant(variant: VariantResult) -> StartupSnapshot:
    return StartupSnapshot(
        wall_ns=variant.wall_ns,
        modules=variant.loaded_modules,
        package_self_us=sum_self_by_package(summarize_runs(variant.profiles).values()),
        instructions=variant.instructions,
    )


def compare_to_baseline(
    baseline: Baseline,
    result: HarnessResult,
    heavy_modules: Sequence[str],
    *,
    alpha: float,
    min_effect: float,
    location: Location,
    instruction_margin: float = 0.02,
) -> Tuple[Optional[Comparison], Tuple[Finding, ...]]:
    """Compare the measured variant with a stored baseline.

    Module-set and heavy-count growth are errors unless the Python version changed since the
    baseline, in which case they are warnings, because standard-library imports differ between
    versions. Instruction-count growth is a warning after any environment change. A different
    machine or Python version adds a `baseline-environment` warning.
    """
    current_env = dataclasses.asdict(result.environment)
    changed = [
        key
        for key in ("python", "machine", "cpu_model", "cpu_count")
        if baseline.environment.get(key) != current_env.get(key)
    ]
    findings: List[Finding] = []
    if changed:
        findings.append(
            Finding(
                rule_id="baseline-environment",
                severity=Severity.warning,
                location=location,
                message=(
                    "the baseline was recorded with a different "
                    + ", ".join(changed)
                    + "; timing comparisons against it are unreliable"
                ),
                fix="Record the baseline again on the machine that runs the check.",
            )
        )
    severity = Severity.warning if "python" in changed else Severity.error
    # The C library picks code paths per CPU, so counts from another machine differ a little.
    instruction_severity = Severity.warning if changed else Severity.error
    reference = baseline.snapshot()
    counter_finding = _check_instruction_counter(baseline, result.measured, location)
    if counter_finding is not None:
        findings.append(counter_finding)
        reference = dataclasses.replace(reference, instructions=None)
    comparison, compared = compare_snapshots(
        reference=reference,
        current=snapshot_variant(result.measured),
        location=location,
        heavy_modules=heavy_modules,
        alpha=alpha,
        min_effect=min_effect,
        reference_name="stored baseline",
        deterministic_severity=severity,
        instruction_margin=instruction_margin,
        instruction_severity=instruction_severity,
    )
    return comparison, tuple(findings) + compared


def _check_instruction_counter(
    baseline: Baseline, variant: VariantResult, location: Location
) -> Optional[Finding]:
    """Return a warning when the two instruction counts came from different tools, else None."""
    if baseline.instructions is None or variant.instructions is None:
        return None
    if baseline.instruction_counter == variant.instruction_counter:
        return None
    recorded_with = baseline.instruction_counter or (
        "cachegrind, which left out the stages that exec replaces"
    )
    return Finding(
        rule_id="baseline-environment",
        severity=Severity.warning,
        location=location,
        message=(
            f"the baseline's instruction count was taken with {recorded_with}, and this run's "
            f"with {variant.instruction_counter}, so the two counts are not compared"
        ),
        fix="Record the baseline again to compare instruction counts.",
    )


def write_baseline(path: Union[str, Path], baseline: Baseline) -> None:
    """Write the baseline atomically: to a temporary file in the same folder, then rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = format_baseline(baseline)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
            temp_file.write(text)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, target)
    except BaseException:
        os.unlink(temp_name)
        raise
    logger.info("Wrote startup baseline for %s to %s.", baseline.binary, target)


def read_baseline(path: Union[str, Path], *, binary: str) -> Baseline:
    """Read and validate the baseline of `binary`.

    Raises BaselineNotFound, CorruptBaseline or BaselineMismatch, each naming the file.
    Reading never modifies the file.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineNotFound(
            f"startup baseline {source} not found; run with --update-baseline to record it"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptBaseline(f"startup baseline {source} cannot be read: {error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CorruptBaseline(
            f"startup baseline {source} is not valid JSON ({error}); fix it, or delete it and "
            f"run with --update-baseline"
        ) from None
    return _parse_baseline(data, source, binary)


def format_baseline(baseline: Baseline) -> str:
    """Return the baseline as diff-friendly JSON text ending with a newline.

    The median and CI fields are for readers; `read_baseline` recomputes them from the samples.
    """
    data = {
        "schema_version": SCHEMA_VERSION,
        "binary": baseline.binary,
        "recorded_at": baseline.recorded_at,
        "startup": {
            "samples_ns": list(baseline.samples_ns),
            "median_ns": baseline.median_ns,
            "ci_low_ns": baseline.ci_low_ns,
            "ci_high_ns": baseline.ci_high_ns,
            "robust_cv": baseline.robust_cv,
            "peak_rss_bytes": baseline.peak_rss_bytes,
            "instructions": baseline.instructions,
            "instruction_counter": baseline.instruction_counter,
            "tree_rss_bytes": baseline.tree_rss_bytes,
        },
        "modules": {
            name: {"self_us": self_us, "cumulative_us": cumulative_us}
            for name, (self_us, cumulative_us) in sorted(baseline.modules.items())
        },
        "heavy_packages": list(baseline.heavy_packages),
        "environment": dict(baseline.environment),
    }
    if baseline.stored_binary is not None:
        data["stored_binary"] = dataclasses.asdict(baseline.stored_binary)
    return _format_json(data, 0) + "\n"


def _format_json(value: Any, level: int) -> str:
    """Format like json.dumps(indent=2, sort_keys=True), but keep flat containers on one line."""
    if not isinstance(value, (dict, list)) or not value or _is_flat(value):
        return json.dumps(value, sort_keys=True)
    indent = "  " * (level + 1)
    if isinstance(value, dict):
        items = [
            f"{indent}{json.dumps(key)}: {_format_json(value[key], level + 1)}"
            for key in sorted(value)
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    items = [indent + _format_json(item, level + 1) for item in value]
    return "[\n" + ",\n".join(items) + "\n" + "  " * level + "]"


def _is_flat(value: Union[Dict[str, Any], List[Any]]) -> bool:
    children = value.values() if isinstance(value, dict) else value
    return all(not isinstance(child, (dict, list)) for child in children)


def _parse_baseline(data: Any, source: Path, binary: str) -> Baseline:
    def corrupt(field: str, expected: str) -> CorruptBaseline:
        return CorruptBaseline(
            f"startup baseline {source} is invalid: {field} must be {expected}; fix it, or "
            f"delete it and run with --update-baseline"
        )

    if not isinstance(data, dict):
        raise corrupt("the document", "a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BaselineMismatch(
            f"startup baseline {source} has schema_version {version!r}, but this perfguard "
            f"reads version {SCHEMA_VERSION}; record it again with --update-baseline"
        )
    if data.get("binary") != binary:
        raise BaselineMismatch(
            f"startup baseline {source} belongs to binary {data.get('binary')!r}, not "
            f"{binary!r}; check the baseline path configured for {binary}"
        )
    startup = data.get("startup")
    if not isinstance(startup, dict):
        raise corrupt("startup", "an object")
    samples = startup.get("samples_ns")
    if (
        not isinstance(samples, list)
        or not samples
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in samples)
    ):
        raise corrupt("startup.samples_ns", "a non-empty list of non-negative integers")
    modules = data.get("modules")
    if not isinstance(modules, dict):
        raise corrupt("modules", "an object mapping module names to their times")
    parsed_modules = {}
    for name, times in modules.items():
        if not isinstance(times, dict) or not all(
            isinstance(times.get(key), int) for key in ("self_us", "cumulative_us")
        ):
            raise corrupt(f"modules.{name}", "an object with integer self_us and cumulative_us")
        parsed_modules[name] = (times["self_us"], times["cumulative_us"])
    heavy = data.get("heavy_packages", [])
    environment = data.get("environment", {})
    if not isinstance(heavy, list) or not all(isinstance(h, str) for h in heavy):
        raise corrupt("heavy_packages", "a list of strings")
    if not isinstance(environment, dict):
        raise corrupt("environment", "an object")
    instructions = startup.get("instructions")
    if instructions is not None and (
        not isinstance(instructions, int) or isinstance(instructions, bool) or instructions < 0
    ):
        raise corrupt("startup.instructions", "a non-negative integer or null")
    counter = startup.get("instruction_counter")
    if counter is not None and not isinstance(counter, str):
        raise corrupt("startup.instruction_counter", "a string or null")
    tree_rss = startup.get("tree_rss_bytes")
    if tree_rss is not None and (
        not isinstance(tree_rss, (int, float)) or isinstance(tree_rss, bool) or tree_rss < 0
    ):
        raise corrupt("startup.tree_rss_bytes", "a non-negative number or null")
    stored = data.get("stored_binary")
    if stored is not None and not (
        isinstance(stored, dict)
        and all(isinstance(stored.get(key), str) and stored[key] for key in ("digest", "path"))
    ):
        raise corrupt("stored_binary", "null or an object with digest and path strings")
    interval = median_ci(samples)
    peak = startup.get("peak_rss_bytes")
    return Baseline(
        binary=binary,
        recorded_at=str(data.get("recorded_at", "")),
        samples_ns=tuple(samples),
        median_ns=median(samples),
        ci_low_ns=interval.low,
        ci_high_ns=interval.high,
        robust_cv=round(robust_cv(samples), 6),
        peak_rss_bytes=float(peak) if isinstance(peak, (int, float)) else None,
        modules=parsed_modules,
        heavy_packages=tuple(heavy),
        environment=environment,
        instructions=instructions,
        instruction_counter=counter,
        tree_rss_bytes=float(tree_rss) if tree_rss is not None else None,
        stored_binary=StoredBinary(stored["digest"], stored["path"]) if stored else None,
    )
