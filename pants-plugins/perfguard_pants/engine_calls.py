"""Every request that perfguard makes to the Pants engine.

Pants 2.17 through 2.31 resolve `Get`/`MultiGet`; 2.32 removed them in favour of calling rules by
name. Goal rules await only the helpers below, so porting to call-by-name changes this module
alone. The 2.17 rule visitor follows awaited helper coroutines, and every `Get` here names its
input type explicitly, as the visitor requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from pants.backend.python.goals.package_pex_binary import (
    PexBinaryFieldSet,
    PexFromTargetsRequestForBuiltPackage,
)
from pants.backend.python.target_types import PythonSourceField
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.backend.python.util_rules.pex_environment import PythonExecutable
from pants.backend.python.util_rules.pex_from_targets import (
    InterpreterConstraintsRequest,
    PexFromTargetsRequest,
)
from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.core.util_rules.system_binaries import SEARCH_PATHS, BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    FileContent,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    Dependencies,
    DependenciesRequest,
    Target,
    Targets,
    TransitiveTargets,
    TransitiveTargetsRequest,
)
from pants.source.source_root import SourceRootsRequest, SourceRootsResult
from pants.util.logging import LogLevel

from perfguard_pants.arch_lint_requests import (
    ArchLintRun,
    ArchLintRunRequest,
    CyclesRequest,
    CyclesResult,
    FileGroupRequest,
    FileGroupResult,
    ImportCostsRequest,
    ImportCostsResult,
    ProbeBatchRequest,
    ProbeBatchResult,
)


async def transitive_targets(addresses: Iterable) -> TransitiveTargets:
    return await Get(TransitiveTargets, TransitiveTargetsRequest(tuple(addresses)))


async def dependencies_of(targets: Sequence[Target]) -> Tuple[Targets, ...]:
    return await MultiGet(Get(Targets, DependenciesRequest(tgt[Dependencies])) for tgt in targets)


async def dependency_addresses_of(targets: Sequence[Target]) -> Tuple[Addresses, ...]:
    return await MultiGet(Get(Addresses, DependenciesRequest(tgt[Dependencies])) for tgt in targets)


async def targets_at(addresses: Sequence[Address]) -> Targets:
    return await Get(Targets, Addresses(addresses))


async def source_roots(paths: Iterable[str]) -> SourceRootsResult:
    return await Get(SourceRootsResult, SourceRootsRequest, SourceRootsRequest.for_files(paths))


async def python_sources(batches: Sequence[Sequence[Target]]) -> Tuple[SourceFiles, ...]:
    return await MultiGet(
        Get(
            SourceFiles,
            SourceFilesRequest(
                (tgt[PythonSourceField] for tgt in batch), for_sources_types=(PythonSourceField,)
            ),
        )
        for batch in batches
    )


async def pythons_for(
    constraints: Sequence[InterpreterConstraints],
) -> Tuple[PythonExecutable, ...]:
    return await MultiGet(Get(PythonExecutable, InterpreterConstraints, ics) for ics in constraints)


@dataclass(frozen=True)
class BinaryBuild:
    """A built `pex_binary`, or the error that stopped its build."""

    field_set: PexBinaryFieldSet
    package: Optional[BuiltPackage]
    error: str = ""


@rule(desc="Build a binary for startup-check", level=LogLevel.DEBUG)
async def build_binary(field_set: PexBinaryFieldSet) -> BinaryBuild:
    # One binary that fails to build must not stop the others from being measured.
    try:
        package = await Get(BuiltPackage, PackageFieldSet, field_set)
    except Exception as e:  # noqa: BLE001 - any build failure is reported per binary.
        return BinaryBuild(field_set, None, f"building {field_set.address} failed: {e}")
    return BinaryBuild(field_set, package)


async def build_binaries(field_sets: Sequence[PexBinaryFieldSet]) -> Tuple[BinaryBuild, ...]:
    return await MultiGet(Get(BinaryBuild, PexBinaryFieldSet, fs) for fs in field_sets)


async def pythons_for_binaries(
    field_sets: Sequence[PexBinaryFieldSet],
) -> Tuple[PythonExecutable, ...]:
    requests = await MultiGet(
        Get(PexFromTargetsRequestForBuiltPackage, PexBinaryFieldSet, fs) for fs in field_sets
    )
    return await MultiGet(
        Get(
            PythonExecutable,
            InterpreterConstraintsRequest,
            request.request.to_interpreter_constraints_request(),
        )
        for request in requests
    )


async def create_digests(file_sets: Sequence[Mapping[str, bytes]]) -> Tuple[Digest, ...]:
    return await MultiGet(
        Get(Digest, CreateDigest(FileContent(path, data) for path, data in files.items()))
        for files in file_sets
    )


async def merge_digests(groups: Sequence[Iterable[Digest]]) -> Tuple[Digest, ...]:
    return await MultiGet(Get(Digest, MergeDigests(group)) for group in groups)


async def digest_contents(digest: Digest) -> DigestContents:
    return await Get(DigestContents, Digest, digest)


async def read_workspace_files(globs: Sequence[str]) -> DigestContents:
    if not globs:
        return DigestContents()
    return await Get(DigestContents, PathGlobs(globs))


async def find_binary(name: str, search_path: Sequence[str] = SEARCH_PATHS) -> BinaryPaths:
    return await Get(BinaryPaths, BinaryPathRequest(binary_name=name, search_path=search_path))


async def run_process(process: Process) -> FallibleProcessResult:
    return await Get(FallibleProcessResult, Process, process)


async def run_processes(processes: Sequence[Process]) -> Tuple[FallibleProcessResult, ...]:
    return await MultiGet(Get(FallibleProcessResult, Process, p) for p in processes)


async def venv_pexes(requests: Sequence[PexFromTargetsRequest]) -> Tuple[VenvPex, ...]:
    pex_requests = await MultiGet(
        Get(PexRequest, PexFromTargetsRequest, request) for request in requests
    )
    return await MultiGet(Get(VenvPex, PexRequest, request) for request in pex_requests)


async def venv_pex_processes(requests: Sequence[VenvPexProcess]) -> Tuple[Process, ...]:
    return await MultiGet(Get(Process, VenvPexProcess, request) for request in requests)


async def source_files_of(fields: Sequence[PythonSourceField]) -> SourceFiles:
    return await Get(
        SourceFiles, SourceFilesRequest(fields, for_sources_types=(PythonSourceField,))
    )


async def probe_batches(requests: Sequence[ProbeBatchRequest]) -> Tuple[ProbeBatchResult, ...]:
    return await MultiGet(Get(ProbeBatchResult, ProbeBatchRequest, r) for r in requests)


async def import_cycles(request: CyclesRequest) -> CyclesResult:
    return await Get(CyclesResult, CyclesRequest, request)


async def file_groups(requests: Sequence[FileGroupRequest]) -> Tuple[FileGroupResult, ...]:
    return await MultiGet(Get(FileGroupResult, FileGroupRequest, r) for r in requests)


async def import_costs(request: ImportCostsRequest) -> ImportCostsResult:
    return await Get(ImportCostsResult, ImportCostsRequest, request)


async def arch_lint_run(request: ArchLintRunRequest) -> ArchLintRun:
    return await Get(ArchLintRun, ArchLintRunRequest, request)


def rules():  # type: ignore[no-untyped-def]
    return collect_rules()
