"""The `arch-lint` goal: perfguard's architecture rules on the build's Python targets."""

from __future__ import annotations

import logging
import os
import zlib
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum
from typing import Dict, Iterable, List, Mapping, Sequence, Set, Tuple

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
    merge_costs,
    not_measured,
    read_cost_script,
)
from perfguard.archlint.cycles import find_cycles
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
    CyclesRequest,
    CyclesResult,
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


def _python_file_targets(targets: Iterable[Target]) -> List[Target]:
    by_path: Dict[str, Target] = {}
    for tgt in targets:
        if tgt.has_field(PythonSourceField):
            by_path.setdefault(tgt[PythonSourceField].file_path, tgt)
    return [by_path[path] for path in sorted(by_path)]


async def _dependency_closure(
    roots: Sequence[Target],
) -> Tuple[List[Target], List[Sequence[Target]]]:
    """Return the Python file targets that `roots` reach, sorted by path, and their dependencies.

    Only dependencies on `.py` file targets are followed. In Pants 2.17.1, resolving the
    address of a `files` generator returned its generated targets under other addresses
    (`Targets`) or raised a KeyError (`UnexpandedTargets`).
    NOTE: a `.py` file reached only through a non-Python target, such as a `target()` that
    lists it, is not analyzed.

    NB: this walks the graph one level per request instead of requesting `TransitiveTargets`,
    and asks for dependency addresses rather than targets, because on sympy's 1,532 files a
    warm `TransitiveTargets` request took about 2.4 s while pantsd ran.
    """
    seen: Dict[Address, Target] = {tgt.address: tgt for tgt in roots}
    dependencies: Dict[Address, Tuple[Address, ...]] = {}
    frontier = list(roots)
    while frontier:
        results = await engine_calls.dependency_addresses_of(frontier)
        new_addresses: Set[Address] = set()
        for tgt, addresses in zip(frontier, results):
            dependencies[tgt.address] = tuple(addresses)
            new_addresses.update(a for a in addresses if a not in seen and _is_python_file(a))
        if not new_addresses:
            break
        frontier = list(await engine_calls.targets_at(sorted(new_addresses)))
        seen.update((tgt.address, tgt) for tgt in frontier)
    files = _python_file_targets(seen.values())
    return files, [[seen[a] for a in dependencies[tgt.address] if a in seen] for tgt in files]


def _is_python_file(address: Address) -> bool:
    return address.is_file_target and address.filename.endswith(".py")


def _file_edges(
    files: Sequence[Target], dependencies: Sequence[Iterable[Target]]
) -> Dict[str, Tuple[str, ...]]:
    edges: Dict[str, Tuple[str, ...]] = {}
    for tgt, deps in zip(files, dependencies):
        importer = tgt[PythonSourceField].file_path
        imported = {
            dep[PythonSourceField].file_path for dep in deps if dep.has_field(PythonSourceField)
        }
        imported.discard(importer)
        edges[importer] = tuple(sorted(imported))
    return edges


async def _module_names(paths: Iterable[str]) -> Dict[str, str]:
    paths = list(paths)
    roots = await engine_calls.source_roots(paths)
    modules = {}
    for path in paths:
        root = roots.path_to_root.get(_pure(path))
        relative = os.path.relpath(path, root.path) if root and root.path not in ("", ".") else path
        module = relative[: -len(".py")].replace(os.sep, ".")
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        modules[path] = module
    return modules


def _pure(path: str):  # type: ignore[no-untyped-def]
    from pathlib import PurePath

    return PurePath(path)


def _probe_requests(
    files: Sequence[Target],
    modules: Mapping[str, str],
    config: ArchLintConfig,
    batch_size: int,
    python_setup: PythonSetup,
) -> List[ProbeBatchRequest]:
    """Split `files` into batches, each under the interpreter that its targets run on."""
    groups: Dict[InterpreterConstraints, List[Target]] = defaultdict(list)
    for tgt in files:
        ics = InterpreterConstraints.create_from_compatibility_fields(
            [tgt[InterpreterConstraintsField]], python_setup
        )
        groups[ics].append(tgt)
    requests = []
    for ics in sorted(groups, key=str):
        for batch in split_batches(groups[ics], batch_size):
            requests.append(
                ProbeBatchRequest(
                    constraints=ics,
                    sources=tuple(tgt[PythonSourceField] for tgt in batch),
                    inputs=tuple(_probe_input(tgt, modules) for tgt in batch),
                    introspected_classes=config.introspected_classes,
                )
            )
    return requests


def split_batches(files: Sequence[Target], batch_size: int) -> List[List[Target]]:
    """Split path-sorted `files` into batches of about `batch_size` files.

    A batch ends after a file whose path hashes to 0 modulo `batch_size`, or at four times
    that size. The boundaries depend only on the paths around them, so adding or removing a
    file changes its own batch (and the next, when the cap cut it) while the engine reuses the
    cached results of all the others. Fixed-size slices would shift every later batch instead.
    """
    size = max(1, batch_size)
    batches: List[List[Target]] = []
    current: List[Target] = []
    for tgt in files:
        current.append(tgt)
        path = tgt[PythonSourceField].file_path.encode()
        if zlib.crc32(path) % size == 0 or len(current) >= 4 * size:
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches


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


async def _probe(
    files: Sequence[Target],
    modules: Mapping[str, str],
    config: ArchLintConfig,
    batch_size: int,
    python_setup: PythonSetup,
) -> Tuple[List[FileAnalysis], List[str]]:
    requests = _probe_requests(files, modules, config, batch_size, python_setup)
    results = await engine_calls.probe_batches(requests)
    analyses: List[FileAnalysis] = []
    failures: List[str] = []
    for result in results:
        analyses.extend(result.files)
        if result.failure is not None:
            failures.append(result.failure)
    return analyses, failures


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


@dataclass(frozen=True)
class _CostEnvironment:
    """Interpreter constraints and resolve shared by the targets measured in one virtualenv."""

    constraints: InterpreterConstraints
    resolve: str

    def describe(self) -> str:
        resolve = "" if self.resolve == "<ignore>" else f", resolve {self.resolve}"
        return f"the requirements of the importing targets ({self.constraints}{resolve})"


def _cost_environments(
    result: ArchLintResult, files_by_path: Mapping[str, Target], python_setup: PythonSetup
) -> Dict[_CostEnvironment, Dict[str, List[Address]]]:
    """Group the modules to measure by the environment of the files that import them."""
    environments: Dict[_CostEnvironment, Dict[str, List[Address]]] = defaultdict(dict)
    for request in find_cost_requests(result):
        for path in request.importer_paths:
            tgt = files_by_path[path]
            ics = InterpreterConstraints.create_from_compatibility_fields(
                [tgt[InterpreterConstraintsField]], python_setup
            )
            resolve = tgt.get(PythonResolveField).normalized_value(python_setup)
            importers = environments[_CostEnvironment(ics, resolve)]
            importers.setdefault(request.module, []).append(tgt.address)
    return environments


async def _measure_costs(
    result: ArchLintResult,
    files_by_path: Mapping[str, Target],
    runs: int,
    python_setup: PythonSetup,
) -> Dict[str, Cost]:
    """Measure each heavy module once per environment, in a requirements-only virtualenv.

    The processes are cached per (module, environment) like any other build step, so a module
    is measured again only when its environment's requirements or interpreter change. They
    run one at a time so that they do not slow each other down.
    """
    environments = _cost_environments(result, files_by_path, python_setup)
    if not environments:
        return {}
    keys = sorted(environments, key=lambda env: (str(env.constraints), env.resolve))
    venvs = await engine_calls.venv_pexes(
        [
            PexFromTargetsRequest(
                sorted({a for addresses in environments[env].values() for a in addresses}),
                output_filename="arch-lint-import-cost.pex",
                internal_only=True,
                include_source_files=False,
                hardcoded_interpreter_constraints=env.constraints,
                description=f"Build the environment that measures import costs ({env.constraints})",
            )
            for env in keys
        ]
    )
    jobs = [
        (env, venv, module, build_cost_spec([module], runs=runs))
        for env, venv in zip(keys, venvs)
        for module in sorted(environments[env])
    ]
    inputs = await engine_calls.create_digests(
        [
            {_COST_SCRIPT_PATH: read_cost_script(), _COST_SPEC_PATH: spec.encode()}
            for *_, spec in jobs
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
            for (env, venv, module, _), digest in zip(jobs, inputs)
        ]
    )
    measured: List[Dict[str, Cost]] = []
    for (env, _, module, _), process in zip(jobs, processes):
        outcome = await engine_calls.run_process(process)
        measured.append(_cost_from_result(module, env, outcome))
    # NOTE: a module imported in two environments gets the first measured figure of the two.
    return merge_costs(measured)


def _cost_from_result(
    module: str, env: _CostEnvironment, outcome: FallibleProcessResult
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


@goal_rule
async def run_arch_lint(
    console: Console,
    subsystem: ArchLintSubsystem,
    targets: FilteredTargets,
    python_setup: PythonSetup,
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

    files, dependencies = await _dependency_closure(roots)
    edges = _file_edges(files, dependencies)
    modules = await _module_names(tgt[PythonSourceField].file_path for tgt in files)
    analyses, failures = await _probe(files, modules, config, subsystem.batch_size, python_setup)
    if failures:
        for failure in failures:
            console.print_stderr(failure)
        return ArchLint(exit_code=EXIT_USAGE)

    graph = build_import_graph(analyses, edges)
    cycles = await engine_calls.import_cycles(CyclesRequest.create(graph, frozenset(focus)))
    result = analyze(
        analyses, config, graph=graph, focus_paths=focus, cycle_components=cycles.components
    )
    if subsystem.measure_costs and find_cost_requests(result):
        files_by_path = {tgt[PythonSourceField].file_path: tgt for tgt in files}
        costs = await _measure_costs(result, files_by_path, subsystem.cost_runs, python_setup)
        result = analyze(
            analyses,
            config,
            graph=graph,
            focus_paths=focus,
            module_costs=costs,
            cycle_components=cycles.components,
        )
    baseline_result = None
    if subsystem.update_baseline and not subsystem.baseline:
        console.print_stderr(
            "arch-lint: `--arch-lint-update-baseline` needs `[arch-lint].baseline`, the file to "
            "write, for example `--arch-lint-baseline=arch-lint-baseline.json`."
        )
        return ArchLint(exit_code=EXIT_USAGE)
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
