"""The `arch-lint` goal: perfguard's architecture rules on the build's Python targets."""

from __future__ import annotations

import logging
import os
import zlib
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePath
from typing import Callable, Dict, Iterable, List, Mapping, Sequence, Set, Tuple, TypeVar

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import (
    InterpreterConstraintsField,
    PythonResolveField,
    PythonSourceField,
)
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.backend.python.util_rules.pex_from_targets import PexFromTargetsRequest
from pants.base.build_root import BuildRoot
from pants.engine.addresses import Address
from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import collect_rules, goal_rule, rule
from pants.engine.target import FieldSet, FilteredTargets, Target
from pants.option.option_types import (
    BoolOption,
    DictOption,
    EnumOption,
    IntOption,
    StrListOption,
    StrOption,
)
from pants.util.logging import LogLevel
from pants.util.strutil import pluralize, softwrap

from perfguard.archlint.baseline import (
    apply_baseline,
    build_baseline,
    read_baseline,
    write_baseline,
)
from perfguard.archlint.config import (
    DEFAULT_HEAVY_MODULES,
    DEFAULT_INTROSPECTED_CLASSES,
    ArchLintConfig,
)
from perfguard.archlint.costs import (
    build_cost_spec,
    find_cost_requests,
    load_cost_output,
    not_measured,
    read_cost_script,
)
from perfguard.archlint.cycles import find_cycles
from perfguard.archlint.file_rules import CostTable
from perfguard.archlint.graph import build_import_graph
from perfguard.archlint.model import FileAnalysis
from perfguard.archlint.output import (
    EXIT_OK,
    EXIT_USAGE,
    exit_code_for,
    render_json,
    render_text,
    reported_findings,
)
from perfguard.archlint.probe import (
    ProbeInput,
    build_manifest,
    load_probe_output,
    read_probe_script,
)
from perfguard.archlint.rules import ArchLintResult, analyze
from perfguard.errors import PerfguardError
from perfguard.findings import Cost
from perfguard_pants import engine_calls
from perfguard_pants.arch_lint_requests import (
    ArchLintRun,
    ArchLintRunRequest,
    CostEnvironment,
    CostJob,
    CyclesRequest,
    CyclesResult,
    FileGroupRequest,
    FileGroupResult,
    GroupFile,
    ImportCostsRequest,
    ImportCostsResult,
    ProbeBatchRequest,
    ProbeBatchResult,
)
from perfguard_pants.fields import ArchLintProtocolField, SkipArchLintField

logger = logging.getLogger(__name__)

_SCRIPT_DIR = "__perfguard"
_PROBE_PATH = f"{_SCRIPT_DIR}/import_probe.py"
_MANIFEST_PATH = f"{_SCRIPT_DIR}/manifest.json"
_COST_SCRIPT_PATH = f"{_SCRIPT_DIR}/import_cost.py"
_COST_SPEC_PATH = f"{_SCRIPT_DIR}/cost_spec.json"

_T = TypeVar("_T")


class ArchLintOutputFormat(Enum):
    """Output formats of `arch-lint`."""

    text = "text"  # One `path:line: rule-id message` line per finding, then a summary.
    json = "json"  # One JSON document (the schema is in perfguard.archlint.output).


class ArchLintSubsystem(GoalSubsystem):
    name = "arch-lint"
    help = "Check Python sources against perfguard's architecture rules."

    heavy_modules = StrListOption(
        default=list(DEFAULT_HEAVY_MODULES),
        help=softwrap(
            """
            Modules that are slow to import. Protocol files must not import them at runtime;
            submodules count (`sqlalchemy.orm`) and names that only start alike do not
            (`numpyro`).
            """
        ),
    )
    protocol_globs = StrListOption(
        default=[],
        help=softwrap(
            """
            Build-root-relative globs of protocol or interface files, such as
            `**/protocols.py`. The `arch_lint_protocol` field marks them per target too.
            """
        ),
    )
    introspected_classes = StrListOption(
        default=list(DEFAULT_INTROSPECTED_CLASSES),
        help=softwrap(
            """
            Dotted names of base classes and class decorators that read a class's annotations
            when the class is created, such as `pydantic.BaseModel`. Names in those annotations
            that are imported only under `TYPE_CHECKING` are reported as
            `guarded-name-at-runtime`, even when annotations are quoted or postponed.
            """
        ),
    )
    class_line_limit = IntOption(
        default=500, help="Classes longer than this many lines are reported as `god-object`."
    )
    severities = DictOption[str](
        default={},
        help="Severity per rule id, for example `{'god-object': 'error'}`.",
    )
    allow = StrListOption(
        default=[],
        help="Accepted findings, as `rule-id:path-glob` or `rule-id:module` entries.",
    )
    baseline = StrOption(
        default=None,
        help=softwrap(
            """
            Build-root-relative path of a baseline of accepted findings. Only findings missing
            from it fail; entries that no longer match are listed.
            """
        ),
    )
    update_baseline = BoolOption(
        default=False,
        help="If true, write the current findings to `[arch-lint].baseline` and pass.",
    )
    output_format = EnumOption(
        default=ArchLintOutputFormat.text, help="Output format for the findings."
    )
    measure_costs = BoolOption(
        default=True,
        help=softwrap(
            """
            If true, measure the import cost (ms and MB) of each heavy module that findings
            name, with the importing targets' interpreter and third-party requirements in a
            sandbox. Results are cached per module and environment.
            """
        ),
    )
    cost_runs = IntOption(
        default=5,
        advanced=True,
        help=(
            "Number of timed imports per heavy module, each in a fresh interpreter. "
            "The median is reported."
        ),
    )
    batch_size = IntOption(
        default=16,
        advanced=True,
        help=softwrap(
            """
            Average number of files parsed per sandboxed process (at most four times this). After
            an edit only the batch of the edited file is parsed again, so smaller batches
            re-parse less, and larger ones start fewer processes on a cold run.
            """
        ),
    )


class ArchLint(Goal):
    subsystem_cls = ArchLintSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@dataclass(frozen=True)
class ArchLintFieldSet(FieldSet):
    required_fields = (PythonSourceField,)

    source: PythonSourceField
    interpreter_constraints: InterpreterConstraintsField

    @classmethod
    def opt_out(cls, tgt: Target) -> bool:
        return tgt.get(SkipArchLintField).value


def _config(subsystem: ArchLintSubsystem, roots: Iterable[Target]) -> ArchLintConfig:
    marked = [
        _escape_glob(tgt[PythonSourceField].file_path)
        for tgt in roots
        if tgt.get(ArchLintProtocolField).value
    ]
    return ArchLintConfig.from_options(
        heavy_modules=subsystem.heavy_modules,
        protocol_globs=(*subsystem.protocol_globs, *marked),
        class_line_limit=subsystem.class_line_limit,
        severities=subsystem.severities,
        allowed_exceptions=subsystem.allow,
        introspected_classes=subsystem.introspected_classes,
    )


def _escape_glob(path: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in path)


def _is_python_file(address: Address) -> bool:
    return address.is_file_target and address.filename.endswith(".py")


def split_batches(
    items: Sequence[_T], batch_size: int, path_of: Callable[[_T], str]
) -> List[List[_T]]:
    """Split path-sorted `items` into batches of about `batch_size` files.

    A batch ends after a file whose path hashes to 0 modulo `batch_size`, or at four times
    that size. The boundaries depend only on the paths around them, so adding or removing a
    file changes its own batch (and the next, when the cap cut it) while the engine reuses the
    cached results of all the others. Fixed-size slices would shift every later batch instead.
    """
    size = max(1, batch_size)
    batches: List[List[_T]] = []
    current: List[_T] = []
    for item in items:
        current.append(item)
        if zlib.crc32(path_of(item).encode()) % size == 0 or len(current) >= 4 * size:
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches


def _group_requests(
    files: Iterable[Tuple[Address, str]], batch_size: int, introspected_classes: Tuple[str, ...]
) -> List[FileGroupRequest]:
    ordered = sorted(files, key=lambda item: (item[1], item[0]))
    return [
        FileGroupRequest(tuple(address for address, _ in batch), introspected_classes)
        for batch in split_batches(ordered, batch_size, lambda item: item[1])
    ]


async def _module_names(paths: Iterable[str]) -> Dict[str, str]:
    paths = list(paths)
    roots = await engine_calls.source_roots(paths)
    modules = {}
    for path in paths:
        root = roots.path_to_root.get(PurePath(path))
        relative = os.path.relpath(path, root.path) if root and root.path not in ("", ".") else path
        module = relative[: -len(".py")].replace(os.sep, ".")
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        modules[path] = module
    return modules


@rule(desc="Analyze a group of Python files for arch-lint", level=LogLevel.DEBUG)
async def analyze_file_group(
    request: FileGroupRequest, python_setup: PythonSetup
) -> FileGroupResult:
    """Resolve, parse and locate one group of files, as a unit that the engine memoizes.

    After an edit, pantsd runs again only the group of the edited file and of files whose
    inferred dependencies changed. The rule that combines the groups reuses the rest.
    """
    targets = [
        tgt
        for tgt in await engine_calls.targets_at(request.addresses)
        if tgt.has_field(PythonSourceField)
    ]
    dependencies = await engine_calls.dependency_addresses_of(targets)
    paths = [tgt[PythonSourceField].file_path for tgt in targets]
    modules = await _module_names(paths)
    by_constraints: Dict[InterpreterConstraints, List[Target]] = defaultdict(list)
    environments = []
    for tgt in targets:
        ics = InterpreterConstraints.create_from_compatibility_fields(
            [tgt[InterpreterConstraintsField]], python_setup
        )
        by_constraints[ics].append(tgt)
        resolve = tgt.get(PythonResolveField).normalized_value(python_setup)
        environments.append(CostEnvironment(ics, resolve))
    probes = await engine_calls.probe_batches(
        [
            ProbeBatchRequest(
                constraints=ics,
                sources=tuple(tgt[PythonSourceField] for tgt in group),
                inputs=tuple(_probe_input(tgt, modules) for tgt in group),
                introspected_classes=request.introspected_classes,
            )
            for ics, group in sorted(by_constraints.items(), key=lambda item: str(item[0]))
        ]
    )
    return FileGroupResult(
        files=tuple(
            GroupFile(
                address=tgt.address,
                path=path,
                environment=environment,
                dependencies=tuple(a for a in addresses if _is_python_file(a)),
            )
            for tgt, path, environment, addresses in zip(targets, paths, environments, dependencies)
        ),
        analyses=tuple(analysis for probe in probes for analysis in probe.files),
        failures=tuple(probe.failure for probe in probes if probe.failure is not None),
    )


async def _analyze_groups(
    roots: Sequence[Tuple[Address, str]], batch_size: int, introspected_classes: Tuple[str, ...]
) -> Tuple[List[GroupFile], List[FileAnalysis], List[str]]:
    """Analyze `roots` and every Python file they reach, one group of files per request.

    Only dependencies on `.py` file targets are followed. In Pants 2.17.1, resolving the
    address of a `files` generator returned its generated targets under other addresses
    (`Targets`) or raised a KeyError (`UnexpandedTargets`).
    NOTE: a `.py` file reached only through a non-Python target, such as a `target()` that
    lists it, is not analyzed.

    NB: this walks the graph one level per request instead of requesting `TransitiveTargets`,
    because on sympy's 1,532 files a warm `TransitiveTargets` request took about 2.4 s while
    pantsd ran. Each level is requested in groups of files, so a warm run after an edit repeats
    the work of one group.
    """
    seen: Set[Address] = {address for address, _ in roots}
    files: List[GroupFile] = []
    analyses: List[FileAnalysis] = []
    failures: List[str] = []
    requests = _group_requests(roots, batch_size, introspected_classes)
    while requests:
        results = await engine_calls.file_groups(requests)
        new_addresses: Set[Address] = set()
        for result in results:
            files.extend(result.files)
            analyses.extend(result.analyses)
            failures.extend(result.failures)
            for group_file in result.files:
                new_addresses.update(a for a in group_file.dependencies if a not in seen)
        if not new_addresses:
            break
        seen.update(new_addresses)
        reached = [
            (tgt.address, tgt[PythonSourceField].file_path)
            for tgt in await engine_calls.targets_at(sorted(new_addresses))
            if tgt.has_field(PythonSourceField)
        ]
        requests = _group_requests(reached, batch_size, introspected_classes)
    return files, analyses, failures


def _file_edges(files: Sequence[GroupFile]) -> Dict[str, Tuple[str, ...]]:
    path_of = {group_file.address: group_file.path for group_file in files}
    edges: Dict[str, Tuple[str, ...]] = {}
    for group_file in files:
        imported = {path_of[a] for a in group_file.dependencies if a in path_of}
        imported.discard(group_file.path)
        edges[group_file.path] = tuple(sorted(imported | set(edges.get(group_file.path, ()))))
    return edges


def _unique_by_path(analyses: Iterable[FileAnalysis]) -> List[FileAnalysis]:
    by_path: Dict[str, FileAnalysis] = {}
    for analysis in analyses:
        by_path.setdefault(analysis.path, analysis)
    return [by_path[path] for path in sorted(by_path)]


@rule(desc="Parse Python sources for arch-lint", level=LogLevel.DEBUG)
async def probe_batch(request: ProbeBatchRequest) -> ProbeBatchResult:
    (python,) = await engine_calls.pythons_for([request.constraints])
    sources = await engine_calls.source_files_of(request.sources)
    (script,) = await engine_calls.create_digests(
        [
            {
                _PROBE_PATH: read_probe_script(),
                _MANIFEST_PATH: build_manifest(
                    request.inputs, request.introspected_classes
                ).encode(),
            }
        ]
    )
    (digest,) = await engine_calls.merge_digests([(script, sources.snapshot.digest)])
    count = len(request.inputs)
    result = await engine_calls.run_process(
        Process(
            argv=(python.path, _PROBE_PATH, _MANIFEST_PATH),
            input_digest=digest,
            append_only_caches=python.append_only_caches,
            description=f"Parse {pluralize(count, 'file')} for arch-lint ({request.constraints})",
            level=LogLevel.DEBUG,
        )
    )
    if result.exit_code != 0:
        return ProbeBatchResult((), _probe_failure(str(request.constraints), request, result))
    try:
        return ProbeBatchResult(load_probe_output(result.stdout.decode()).files)
    except PerfguardError as e:
        return ProbeBatchResult((), f"arch-lint: {e}")


@rule(desc="Find import cycles for arch-lint", level=LogLevel.DEBUG)
async def find_import_cycles(request: CyclesRequest) -> CyclesResult:
    return CyclesResult(find_cycles(request.graph, focus_paths=request.focus_paths))


def _probe_input(tgt: Target, modules: Mapping[str, str]) -> ProbeInput:
    path = tgt[PythonSourceField].file_path
    return ProbeInput(
        path=path, module=modules[path], is_package=os.path.basename(path) == "__init__.py"
    )


def _probe_failure(ics_text: str, request: ProbeBatchRequest, result: FallibleProcessResult) -> str:
    tail = result.stderr.decode(errors="replace")[-2000:]
    first = request.inputs[0].path
    return (
        softwrap(
            f"""
        arch-lint: the source parser failed (exit code {result.exit_code}) on a batch of
        {pluralize(len(request.inputs), 'file')} starting at {first}, under {ics_text}. Rerun with
        `--keep-sandboxes=on_failure` to inspect it. Its stderr ended with:
        """
        )
        + "\n"
        + tail
    )


def _cost_jobs(result: ArchLintResult, files: Sequence[GroupFile]) -> Tuple[CostJob, ...]:
    """Group the modules to measure by the environment of the files that import them."""
    by_path = {group_file.path: group_file for group_file in files}
    importers: Dict[CostEnvironment, Dict[str, Set[Address]]] = defaultdict(dict)
    for request in find_cost_requests(result):
        for path in request.importer_paths:
            group_file = by_path[path]
            modules = importers[group_file.environment]
            modules.setdefault(request.module, set()).add(group_file.address)
    return tuple(
        CostJob(
            environment=env,
            modules=tuple(sorted(importers[env])),
            addresses=tuple(sorted({a for found in importers[env].values() for a in found})),
        )
        for env in sorted(importers, key=lambda env: (str(env.constraints), env.resolve))
    )


@rule(desc="Measure import costs for arch-lint", level=LogLevel.DEBUG)
async def measure_import_costs(request: ImportCostsRequest) -> ImportCostsResult:
    """Measure each heavy module once per environment, in a requirements-only virtualenv.

    The processes are cached per (module, environment) like any other build step, so a module
    is measured again only when its environment's requirements or interpreter change. They
    run one at a time so that they do not slow each other down.
    """
    venvs = await engine_calls.venv_pexes(
        [
            PexFromTargetsRequest(
                job.addresses,
                output_filename="arch-lint-import-cost.pex",
                internal_only=True,
                include_source_files=False,
                hardcoded_interpreter_constraints=job.environment.constraints,
                description=(
                    "Build the environment that measures import costs "
                    f"({job.environment.constraints})"
                ),
            )
            for job in request.jobs
        ]
    )
    runs = [
        (job.environment, venv, module, build_cost_spec([module], runs=request.runs))
        for job, venv in zip(request.jobs, venvs)
        for module in job.modules
    ]
    inputs = await engine_calls.create_digests(
        [
            {_COST_SCRIPT_PATH: read_cost_script(), _COST_SPEC_PATH: spec.encode()}
            for *_, spec in runs
        ]
    )
    processes = await engine_calls.venv_pex_processes(
        [
            VenvPexProcess(
                venv,
                argv=(_COST_SCRIPT_PATH, _COST_SPEC_PATH),
                input_digest=digest,
                description=f"Measure the import cost of {module} ({env.constraints})",
                level=LogLevel.DEBUG,
            )
            for (env, venv, module, _), digest in zip(runs, inputs)
        ]
    )
    measured: List[Tuple[str, str, Cost]] = []
    for (env, _, module, _), process in zip(runs, processes):
        outcome = await engine_calls.run_process(process)
        for name, cost in _cost_from_result(module, env, outcome).items():
            measured.append((env.describe(), name, cost))
    return ImportCostsResult(tuple(measured))


def _cost_from_result(
    module: str, env: CostEnvironment, outcome: FallibleProcessResult
) -> Dict[str, Cost]:
    if outcome.exit_code != 0:
        stderr = outcome.stderr.decode(errors="replace").strip().splitlines()
        detail = stderr[-1] if stderr else "no error output"
        reason = f"the import cost probe failed (exit code {outcome.exit_code}): {detail}"
        return {module: not_measured(reason)}
    try:
        return load_cost_output(outcome.stdout.decode(), environment=env.describe())
    except PerfguardError as e:
        return {module: not_measured(str(e))}


@rule(desc="Check Python sources against the arch-lint rules", level=LogLevel.DEBUG)
async def check_arch_lint(request: ArchLintRunRequest) -> ArchLintRun:
    """Run every rule on the requested files and the files they reach.

    The engine memoizes the whole check, so a warm run with nothing changed only renders
    the result, and one after an edit combines memoized groups with the edited file's group.
    """
    config = request.config
    files, analyses, failures = await _analyze_groups(
        request.roots, request.batch_size, config.introspected_classes
    )
    if failures:
        return ArchLintRun(None, tuple(failures))
    unique = _unique_by_path(analyses)
    graph = build_import_graph(unique, _file_edges(files))
    cycles = await engine_calls.import_cycles(CyclesRequest.create(graph, request.focus))
    result = analyze(
        unique, config, graph=graph, focus_paths=request.focus, cycle_components=cycles.components
    )
    jobs = _cost_jobs(result, files) if request.measure_costs else ()
    if jobs:
        measured = await engine_calls.import_costs(ImportCostsRequest(jobs, request.cost_runs))
        environment_of = {
            group_file.path: group_file.environment.describe() for group_file in files
        }
        result = analyze(
            unique,
            config,
            graph=graph,
            focus_paths=request.focus,
            module_costs=CostTable.create(measured.costs, environment_of),
            cycle_components=cycles.components,
        )
    return ArchLintRun(result, ())


@goal_rule
async def run_arch_lint(
    console: Console,
    subsystem: ArchLintSubsystem,
    targets: FilteredTargets,
    build_root: BuildRoot,
) -> ArchLint:
    roots = [tgt for tgt in targets if tgt.has_field(PythonSourceField)]
    focus = {
        tgt[PythonSourceField].file_path for tgt in roots if ArchLintFieldSet.is_applicable(tgt)
    }
    try:
        config = _config(subsystem, roots)
    except PerfguardError as e:
        console.print_stderr(f"arch-lint: {e}")
        return ArchLint(exit_code=EXIT_USAGE)
    if not focus:
        console.print_stderr("arch-lint: no Python source targets matched; nothing to check.")
        return ArchLint(exit_code=EXIT_OK)
    if subsystem.update_baseline and not subsystem.baseline:
        console.print_stderr(
            "arch-lint: `--arch-lint-update-baseline` needs `[arch-lint].baseline`, the file to "
            "write, for example `--arch-lint-baseline=arch-lint-baseline.json`."
        )
        return ArchLint(exit_code=EXIT_USAGE)

    run = await engine_calls.arch_lint_run(
        ArchLintRunRequest(
            roots=tuple(sorted((tgt.address, tgt[PythonSourceField].file_path) for tgt in roots)),
            focus=frozenset(focus),
            config=config,
            batch_size=subsystem.batch_size,
            measure_costs=subsystem.measure_costs,
            cost_runs=subsystem.cost_runs,
        )
    )
    if run.result is None:
        for failure in run.failures:
            console.print_stderr(failure)
        return ArchLint(exit_code=EXIT_USAGE)
    result = run.result

    baseline_result = None
    if subsystem.baseline:
        baseline_path = os.path.join(build_root.path, subsystem.baseline)
        try:
            if subsystem.update_baseline:
                write_baseline(baseline_path, build_baseline(result.findings))
                console.print_stderr(
                    f"arch-lint: wrote {pluralize(len(result.findings), 'finding')} to "
                    f"{subsystem.baseline}."
                )
                return ArchLint(exit_code=EXIT_OK)
            baseline_result = apply_baseline(result.findings, read_baseline(baseline_path))
        except PerfguardError as e:
            console.print_stderr(f"arch-lint: {e}")
            return ArchLint(exit_code=EXIT_USAGE)

    if subsystem.output_format == ArchLintOutputFormat.json:
        console.print_stdout(render_json(result, baseline_result))
    else:
        console.print_stdout(render_text(result, baseline_result))
    return ArchLint(exit_code=exit_code_for(reported_findings(result, baseline_result)))


def rules():  # type: ignore[no-untyped-def]
    return collect_rules()
