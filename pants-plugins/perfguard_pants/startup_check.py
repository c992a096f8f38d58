"""The `startup-check` goal: build `pex_binary` targets and measure their startup in sandboxes."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from enum import Enum
from typing import Dict, List, Optional, Tuple

from pants.backend.python.goals.package_pex_binary import PexBinaryFieldSet
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.base.build_root import BuildRoot
from pants.core.goals.package import BuiltPackage
from pants.core.util_rules.distdir import DistDir
from pants.core.util_rules.system_binaries import SEARCH_PATHS
from pants.engine.console import Console
from pants.engine.fs import Workspace
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.internals.session import RunId
from pants.engine.process import (
    FallibleProcessResult,
    Process,
    ProcessCacheScope,
    ProcessResultMetadata,
)
from pants.engine.rules import collect_rules, goal_rule
from pants.engine.target import FilteredTargets, Target
from pants.option.option_types import (
    BoolOption,
    EnumOption,
    FloatOption,
    IntOption,
    StrListOption,
    StrOption,
)
from pants.util.logging import LogLevel
from pants.util.strutil import pluralize, softwrap

from perfguard.startup.baseline import (
    Baseline,
    StoredBinary,
    build_baseline,
    read_baseline,
    write_baseline,
)
from perfguard.startup.budgets import Budgets, StartupReport, evaluate
from perfguard.startup.errors import StartupCheckError
from perfguard.startup.html import render_html
from perfguard.startup.results import HarnessResult, HarnessSpec
from perfguard_pants import engine_calls
from perfguard_pants.arch_lint import ArchLintSubsystem
from perfguard_pants.engine_calls import BinaryBuild
from perfguard_pants.fields import (
    SkipStartupCheckField,
    StartupBudgetMsField,
    StartupCheckArgsField,
    StartupCheckEnvField,
    StartupHeavyImportsBudgetField,
    StartupImportBudgetMsField,
    StartupMemoryBudgetMbField,
)

logger = logging.getLogger(__name__)

_SCRIPT_DIR = "__perfguard"
_HARNESS_PATH = f"{_SCRIPT_DIR}/startup_harness.py"
_SPEC_PATH = f"{_SCRIPT_DIR}/spec.json"
# The named cache that Pants' own pex processes use as PEX_ROOT. Measured runs share it, so a
# pex unpacks once per machine, as it does under ~/.pex in production, not once per sandbox.
_PEX_ROOT_CACHE = "pex_root"
_PEX_ROOT_PATH = ".cache/pex_root"
_HTML_DIR = "startup-check"
_STORED_BINARY_DIR = f"{_SCRIPT_DIR}/baseline"

EXIT_OK = 0
EXIT_BLOCKING = 1
EXIT_USAGE = 2


class InstructionCounting(Enum):
    """When `startup-check` counts instructions under valgrind."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class StartupCheckSubsystem(GoalSubsystem):
    name = "startup-check"
    help = "Build `pex_binary` targets and check their startup time and memory against budgets."

    budget_ms = FloatOption(default=500.0, help="Startup time budget per binary, in milliseconds.")
    memory_budget_mb = FloatOption(
        default=100.0, help="Peak memory (RSS) budget per binary, in megabytes (10^6 bytes)."
    )
    import_budget_ms = FloatOption(
        default=100.0, help="Budget for the cumulative time of any single import, in milliseconds."
    )
    heavy_imports_budget = IntOption(
        default=3, help="Number of heavy modules a binary may load at startup."
    )
    prohibited_modules = StrListOption(
        default=None,
        help=softwrap(
            """
            Modules that must not be loaded at startup. Defaults to
            `[arch-lint].heavy_modules`.
            """
        ),
    )
    warmup = IntOption(default=2, help="Untimed runs before the timed ones.")
    min_runs = IntOption(default=10, help="Fewest timed runs per binary.")
    max_runs = IntOption(
        default=30,
        help=softwrap(
            """
            Most timed runs per binary. Runs continue past `[startup-check].min_runs` until
            the confidence interval of the median is within `[startup-check].target_rel_ci`.
            """
        ),
    )
    target_rel_ci = FloatOption(
        default=0.05,
        advanced=True,
        help=softwrap(
            """
            Stop timing once the 95% confidence interval is within this fraction of the median.
            With 15% run-to-run noise a 5% half-width needs about 55 runs (normal
            approximation), more than the default `[startup-check].max_runs`, and the report
            then warns that the timings are noisy.
            """
        ),
    )
    count_instructions = EnumOption(
        default=InstructionCounting.AUTO,
        help=softwrap(
            """
            Whether to count each binary's instructions in one more run under valgrind's
            callgrind, which counts every process and every exec stage of the binary and takes
            tens of times longer than a normal run. `auto` counts when valgrind is found on
            `[startup-check].valgrind_search_path` and otherwise notes in the report that it did
            not, `always` fails when valgrind is missing, and `never` does not count. With
            `[startup-check].baseline_dir`, a count more than 2% above the baseline's blocks.
            Unlike wall time, the count does not change with other load on the machine.
            """
        ),
    )
    valgrind_search_path = StrListOption(
        default=list(SEARCH_PATHS),
        advanced=True,
        help="Folders searched, in order, for the `valgrind` executable.",
    )
    timeout = FloatOption(
        default=30.0, help="Seconds one run of a binary may take before it is killed as hung."
    )
    baseline_dir = StrOption(
        default=None,
        help=softwrap(
            """
            Build-root-relative folder of stored baselines, one JSON file per binary. When set,
            each binary is also checked for regressions against its baseline.
            """
        ),
    )
    baseline_binaries_dir = StrOption(
        default=None,
        advanced=True,
        help=softwrap(
            """
            Build-root-relative folder where `--startup-check-update-baseline` also stores
            each binary, in a subfolder named after the build's digest. When a baseline's
            binary is found there, the check runs it and the new build interleaved on this
            machine, which is far less sensitive to machine noise than a comparison with
            stored samples. Keep the folder out of version control, and restore it in CI
            from a cache keyed on the baseline files.
            """
        ),
    )
    update_baseline = BoolOption(
        default=False,
        help="If true, write each binary's measurement to `[startup-check].baseline_dir`.",
    )
    force = BoolOption(
        default=False,
        help="If true, measure again even when the build has a cached result for the binary.",
    )
    trust_remote_timings = BoolOption(
        default=False,
        advanced=True,
        help=softwrap(
            """
            If true, accept measurements from the remote cache. They were taken on another
            machine, so by default a remote hit is measured again here.
            """
        ),
    )


class StartupCheck(Goal):
    subsystem_cls = StartupCheckSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@dataclass(frozen=True)
class _Measured:
    address: str
    report: Optional[StartupReport]
    result: Optional[HarnessResult]
    error: str = ""


async def _measure(
    builds: Tuple[BinaryBuild, ...],
    targets: List[Target],
    subsystem: StartupCheckSubsystem,
    budgets_for: List[Budgets],
    prohibited: Tuple[str, ...],
    run_id: RunId,
    valgrind: Optional[str],
    build_root: BuildRoot,
) -> List[_Measured]:
    pythons = await engine_calls.pythons_for_binaries(
        [build.field_set for build in builds if build.package is not None]
    )
    stored = [_find_stored_binary(subsystem, build_root, tgt) for tgt in targets]
    python_iter = iter(pythons)
    script_inputs: List[Dict[str, bytes]] = []
    plans: List[Optional[Tuple[PythonExecutable, HarnessSpec, BinaryBuild]]] = []
    for build, tgt, stored_binary, budgets in zip(builds, targets, stored, budgets_for):
        if build.package is None:
            plans.append(None)
            continue
        python = next(python_iter)
        relpath = _entry_path(build)
        inputs = {_HARNESS_PATH: _harness_script()}
        baseline_relpath = None
        if stored_binary is not None:
            baseline_relpath, stored_inputs = stored_binary
            inputs.update(stored_inputs)
        # Without a baseline to compare with, timing only decides the budget, so it may stop
        # as soon as the budget is clearly met or clearly missed.
        decision_ns = None if subsystem.baseline_dir else budgets.startup_ms * 1e6
        spec = _spec(subsystem, tgt, python.path, relpath, valgrind, baseline_relpath, decision_ns)
        inputs[_SPEC_PATH] = spec.to_json().encode()
        script_inputs.append(inputs)
        plans.append((python, spec, build))
    scripts = await engine_calls.create_digests(script_inputs)
    digests = await engine_calls.merge_digests(
        [
            (script, _package(plan[2]).digest)
            for script, plan in zip(scripts, [p for p in plans if p is not None])
        ]
    )

    measured: List[_Measured] = []
    digest_iter = iter(digests)
    for build, tgt, plan, budgets in zip(builds, targets, plans, budgets_for):
        address = tgt.address.spec
        if plan is None:
            measured.append(_Measured(address, None, None, build.error))
            continue
        python, spec, _ = plan
        digest = next(digest_iter)
        process = _process(python, spec, digest, address, force=subsystem.force)
        # Timings are taken one binary at a time so that binaries do not compete for the CPU.
        result = await engine_calls.run_process(process)
        remote = result.metadata.source(run_id) == ProcessResultMetadata.Source.HIT_REMOTELY
        if remote and not subsystem.trust_remote_timings:
            # A remote hit was measured on another machine, so its timings do not apply here.
            result = await engine_calls.run_process(
                _process(python, spec, digest, address, force=True)
            )
        measured.append(_interpret(address, result, budgets, prohibited))
    return measured


async def _write_charts(
    reports: List[StartupReport], workspace: Workspace, dist_dir: DistDir
) -> List[str]:
    """Write one HTML import chart per report under the dist dir and return the paths."""
    files = {
        f"{_HTML_DIR}/{_file_stem(report.binary)}.html": render_html(
            [report], title=f"startup of {report.binary}"
        ).encode()
        for report in reports
    }
    if not files:
        return []
    (digest,) = await engine_calls.create_digests([files])
    workspace.write_digest(digest, path_prefix=str(dist_dir.relpath))
    return [os.path.join(str(dist_dir.relpath), path) for path in files]


@goal_rule
async def run_startup_check(
    console: Console,
    subsystem: StartupCheckSubsystem,
    arch_lint: ArchLintSubsystem,
    targets: FilteredTargets,
    build_root: BuildRoot,
    run_id: RunId,
    workspace: Workspace,
    dist_dir: DistDir,
) -> StartupCheck:
    binaries = [
        tgt
        for tgt in targets
        if PexBinaryFieldSet.is_applicable(tgt) and not tgt.get(SkipStartupCheckField).value
    ]
    if not binaries:
        console.print_stderr("startup-check: no `pex_binary` targets matched; nothing to measure.")
        return StartupCheck(exit_code=EXIT_OK)
    prohibited = tuple(
        # A list option given `default=None` reads back as [], so ask whether it was set.
        arch_lint.heavy_modules
        if subsystem.options.is_default("prohibited_modules")
        else subsystem.prohibited_modules
    )
    try:
        budgets_for = [_budgets(subsystem, tgt, prohibited) for tgt in binaries]
    except ValueError as e:
        console.print_stderr(f"startup-check: {e}")
        return StartupCheck(exit_code=EXIT_USAGE)
    if subsystem.update_baseline and not subsystem.baseline_dir:
        console.print_stderr(
            "startup-check: `--startup-check-update-baseline` needs `[startup-check].baseline_dir`,"
            " the folder to write, for example `--startup-check-baseline-dir=.perfguard/startup`."
        )
        return StartupCheck(exit_code=EXIT_USAGE)

    valgrind = None
    if subsystem.count_instructions != InstructionCounting.NEVER:
        found = await engine_calls.find_binary("valgrind", subsystem.valgrind_search_path)
        if found.first_path is not None:
            valgrind = found.first_path.path
        elif subsystem.count_instructions == InstructionCounting.ALWAYS:
            console.print_stderr(
                "startup-check: `[startup-check].count_instructions` is `always`, but valgrind "
                f"was not found in {', '.join(subsystem.valgrind_search_path)}. Install it (for "
                "example `apt-get install valgrind`), or set the option to `auto` or `never`."
            )
            return StartupCheck(exit_code=EXIT_USAGE)

    builds = await engine_calls.build_binaries([PexBinaryFieldSet.create(t) for t in binaries])
    measured = await _measure(
        builds, binaries, subsystem, budgets_for, prohibited, run_id, valgrind, build_root
    )

    exit_code = EXIT_OK
    reports: List[StartupReport] = []
    for item in measured:
        if item.report is None:
            console.print_stdout(f"{item.address}: FAILED\n  {item.error}")
            exit_code = EXIT_BLOCKING
            continue
        report = item.report
        if subsystem.baseline_dir and item.result is not None:
            index = [tgt.address.spec for tgt in binaries].index(item.address)
            report, baseline_exit = _apply_baseline(
                console,
                subsystem,
                build_root,
                workspace,
                item,
                budgets_for[index],
                builds[index],
                prohibited,
            )
            exit_code = max(exit_code, baseline_exit)
        console.print_stdout(report.format_text())
        reports.append(report)
        if report.blocking:
            exit_code = max(exit_code, EXIT_BLOCKING)
    if valgrind is None and subsystem.count_instructions == InstructionCounting.AUTO:
        console.print_stdout(
            "startup-check: instructions were not counted, because valgrind was not found in "
            f"{', '.join(subsystem.valgrind_search_path)}. Install it (for example `apt-get "
            "install valgrind`) to count them."
        )
    for path in await _write_charts(reports, workspace, dist_dir):
        console.print_stderr(f"startup-check: wrote the import chart {path}.")
    failed = sum(1 for item in measured if item.report is None or item.report.blocking)
    console.print_stderr(
        f"startup-check: {pluralize(len(measured), 'binary')} checked, {failed} failed."
    )
    return StartupCheck(exit_code=exit_code)


def _apply_baseline(
    console: Console,
    subsystem: StartupCheckSubsystem,
    build_root: BuildRoot,
    workspace: Workspace,
    item: _Measured,
    budgets: Budgets,
    build: BinaryBuild,
    prohibited: Tuple[str, ...],
) -> Tuple[StartupReport, int]:
    assert item.report is not None and item.result is not None
    assert subsystem.baseline_dir is not None
    path = os.path.join(build_root.path, subsystem.baseline_dir, _baseline_name(item.address))
    relpath = os.path.relpath(path, build_root.path)
    try:
        if subsystem.update_baseline:
            baseline = build_baseline(item.address, item.result, budgets.heavy_modules)
            if subsystem.baseline_binaries_dir:
                baseline = _store_binary(
                    subsystem.baseline_binaries_dir, workspace, build, baseline
                )
            write_baseline(path, baseline)
            console.print_stderr(
                f"startup-check: wrote the baseline of {item.address} to {relpath}."
            )
            return item.report, EXIT_OK
        baseline = read_baseline(path, binary=item.address)
    except (StartupCheckError, ValueError) as e:
        console.print_stderr(f"startup-check: {e}")
        return item.report, EXIT_USAGE
    report = evaluate(item.result, budgets, prohibited, baseline, binary=item.address)
    return report, EXIT_OK


def _store_binary(
    folder: str, workspace: Workspace, build: BinaryBuild, baseline: Baseline
) -> Baseline:
    """Write the built binary under `folder`/DIGEST and record where it is in the baseline."""
    assert build.package is not None
    fingerprint = build.package.digest.fingerprint
    workspace.write_digest(build.package.digest, path_prefix=os.path.join(folder, fingerprint))
    return dataclasses.replace(
        baseline, stored_binary=StoredBinary(fingerprint, _entry_path(build))
    )


def _baseline_name(address: str) -> str:
    return f"{_file_stem(address)}.json"


def _file_stem(address: str) -> str:
    return address.strip("/").replace("/", ".").replace(":", "@")


def _budgets(subsystem: StartupCheckSubsystem, tgt: Target, heavy: Tuple[str, ...]) -> Budgets:
    def pick(field, default):  # type: ignore[no-untyped-def]
        value = tgt.get(field).value
        return default if value is None else value

    return Budgets(
        startup_ms=pick(StartupBudgetMsField, subsystem.budget_ms),
        single_import_ms=pick(StartupImportBudgetMsField, subsystem.import_budget_ms),
        peak_memory_mb=pick(StartupMemoryBudgetMbField, subsystem.memory_budget_mb),
        max_heavy_imports=pick(StartupHeavyImportsBudgetField, subsystem.heavy_imports_budget),
        heavy_modules=heavy,
    )


def _entry_path(build: BinaryBuild) -> str:
    assert build.package is not None
    relpath = build.package.artifacts[0].relpath or ""
    if build.field_set.layout.value != "zipapp":
        relpath = os.path.join(relpath, "__main__.py")
    return relpath


def _find_stored_binary(
    subsystem: StartupCheckSubsystem, build_root: BuildRoot, tgt: Target
) -> Optional[Tuple[str, Dict[str, bytes]]]:
    """Return the entry path and sandbox files of the baseline's stored binary, if on disk.

    NB: the files are read directly rather than through the engine, because a folder that is
    ignored by git, as stored binaries should be, is also invisible to Pants' path globs.
    """
    if not (subsystem.baseline_dir and subsystem.baseline_binaries_dir):
        return None
    if subsystem.update_baseline:
        return None
    address = tgt.address.spec
    path = os.path.join(build_root.path, subsystem.baseline_dir, _baseline_name(address))
    try:
        stored = read_baseline(path, binary=address).stored_binary
    except (StartupCheckError, ValueError):
        # The comparison step reads the baseline again and reports the error.
        return None
    if stored is None:
        return None
    folder = os.path.join(build_root.path, subsystem.baseline_binaries_dir, stored.digest)
    if not os.path.isfile(os.path.join(folder, stored.path)):
        logger.info(
            "The stored binary of %s is not in %s, so it is compared with the stored samples.",
            address,
            folder,
        )
        return None
    files: Dict[str, bytes] = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files[f"{_STORED_BINARY_DIR}/{os.path.relpath(path, folder)}"] = f.read()
    return stored.path, files


def _spec(
    subsystem: StartupCheckSubsystem,
    tgt: Target,
    python: str,
    relpath: str,
    valgrind: Optional[str],
    baseline_relpath: Optional[str] = None,
    decision_ns: Optional[float] = None,
) -> HarnessSpec:
    args = tuple(tgt.get(StartupCheckArgsField).value or ())
    env: Dict[str, str] = dict(tgt.get(StartupCheckEnvField).value or {})
    env.setdefault("PEX_ROOT", _PEX_ROOT_PATH)
    # NOTE: the importtime run puts a module recorder on PYTHONPATH, and a pex re-executes once
    # more to scrub it, so that run shows two more launcher processes than production does.
    command = (python, relpath, *args)
    candidate = None
    if baseline_relpath is not None:
        # The stored baseline binary runs as A and the new build as B, interleaved.
        candidate = command
        command = (python, f"{_STORED_BINARY_DIR}/{baseline_relpath}", *args)
    return HarnessSpec.build(
        command=command,
        candidate_command=candidate,
        candidate_env=env,
        env=env,
        warmup=max(1, subsystem.warmup),
        min_runs=subsystem.min_runs,
        max_runs=subsystem.max_runs,
        target_rel_ci=subsystem.target_rel_ci,
        timeout_s=subsystem.timeout,
        valgrind=valgrind,
        decision_ns=decision_ns,
        # The program's own arguments follow the interpreter and the pex path.
        program_args_start=2,
    )


def _process(
    python,  # type: ignore[no-untyped-def]
    spec: HarnessSpec,
    digest,  # type: ignore[no-untyped-def]
    address: str,
    *,
    force: bool,
) -> Process:
    # The memory run is one more run, and a callgrind run gets 100 times the time-out of one.
    runs = spec.warmup + spec.max_runs + spec.importtime_runs + 1 + (100 if spec.valgrind else 0)
    return Process(
        argv=(python.path, _HARNESS_PATH, _SPEC_PATH),
        input_digest=digest,
        append_only_caches={**python.append_only_caches, _PEX_ROOT_CACHE: _PEX_ROOT_PATH},
        immutable_input_digests=python.immutable_input_digests,
        description=f"Measure the startup of {address}",
        level=LogLevel.DEBUG,
        # The harness kills each hung run itself; this bound only guards against the harness.
        timeout_seconds=int(spec.timeout_s * runs) + 60,
        cache_scope=ProcessCacheScope.PER_SESSION if force else ProcessCacheScope.SUCCESSFUL,
    )


def _interpret(
    address: str, result: FallibleProcessResult, budgets: Budgets, prohibited: Tuple[str, ...]
) -> _Measured:
    if result.exit_code != 0:
        tail = result.stderr.decode(errors="replace")[-2000:]
        return _Measured(
            address,
            None,
            None,
            f"the startup harness failed with exit code {result.exit_code}:\n{tail}",
        )
    try:
        harness = HarnessResult.from_json(
            result.stdout.decode(), source=f"harness output of {address}"
        )
    except StartupCheckError as e:
        return _Measured(address, None, None, str(e))
    return _Measured(address, evaluate(harness, budgets, prohibited, binary=address), harness)


def _harness_script() -> bytes:
    import perfguard.scripts

    path = os.path.join(os.path.dirname(perfguard.scripts.__file__), "startup_harness.py")
    with open(path, "rb") as f:
        return f.read()


def _package(build: BinaryBuild) -> BuiltPackage:
    assert build.package is not None, f"{build.field_set.address} has no built package"
    return build.package


def rules():  # type: ignore[no-untyped-def]
    return collect_rules()
