"""Values exchanged with the startup harness: the spec it reads and the result it writes.

The harness (`perfguard/scripts/startup_harness.py`) is stdlib-only and cannot import these
classes, so `HarnessSpec.to_json` and `HarnessResult.from_json` are the contract between them.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from perfguard.startup.errors import InvalidSpec, MalformedHarnessOutput
from perfguard.startup.importtime import ImportProfile, is_launcher_module, parse_importtime

HARNESS_VERSION = 1
FAILURE_KINDS = ("exit", "signal", "timeout", "spawn")
PHASES = ("warmup", "timed", "importtime", "memory", "instructions")


@dataclass(frozen=True)
class HarnessSpec:
    """Harness input: the command, its environment and the run counts and limits.

    The harness module's DEFAULTS list the same fields.

    `env` and `candidate_env` are sorted (name, value) pairs, so the spec is hashable.
    `tree_memory` adds one untimed run that samples the memory of the whole process tree.
    `decision_ns`, a startup budget, lets timing stop once the median's CI is wholly on one
    side of it. `program_args_start`, the index of the program's first argument in `command`,
    lets the importtime runs of a venv-mode pex start its virtualenv directly.
    """

    command: Tuple[str, ...]
    env: Tuple[Tuple[str, str], ...] = ()
    inherit_env: bool = True
    record_modules: bool = True
    cwd: Optional[str] = None
    warmup: int = 2
    min_runs: int = 7
    max_runs: int = 40
    target_rel_ci: float = 0.03
    timeout_s: float = 30.0
    importtime: bool = True
    importtime_runs: int = 1
    importtime_level: int = 1
    max_output_bytes: int = 65536
    max_importtime_bytes: int = 16 * 1024 * 1024
    valgrind: Optional[str] = None
    tree_memory: bool = True
    decision_ns: Optional[float] = None
    program_args_start: Optional[int] = None
    candidate_command: Optional[Tuple[str, ...]] = None
    candidate_env: Tuple[Tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        problems = _find_spec_problems(self)
        if problems:
            raise InvalidSpec("invalid harness spec:\n  " + "\n  ".join(problems))

    @classmethod
    def build(
        cls,
        command: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
        candidate_command: Optional[Sequence[str]] = None,
        candidate_env: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> HarnessSpec:
        """Build a spec from lists and dicts, converting them to the hashable forms."""
        return cls(
            command=tuple(command),
            env=tuple(sorted((env or {}).items())),
            candidate_command=tuple(candidate_command) if candidate_command else None,
            candidate_env=tuple(sorted((candidate_env or {}).items())),
            **options,
        )

    def to_json(self) -> str:
        data: Dict[str, Any] = {
            "command": list(self.command),
            "env": dict(self.env),
            "inherit_env": self.inherit_env,
            "record_modules": self.record_modules,
            "cwd": self.cwd,
            "warmup": self.warmup,
            "min_runs": self.min_runs,
            "max_runs": self.max_runs,
            "target_rel_ci": self.target_rel_ci,
            "timeout_s": self.timeout_s,
            "importtime": self.importtime,
            "importtime_runs": self.importtime_runs,
            "importtime_level": self.importtime_level,
            "max_output_bytes": self.max_output_bytes,
            "max_importtime_bytes": self.max_importtime_bytes,
            "valgrind": self.valgrind,
            "tree_memory": self.tree_memory,
            "decision_ns": self.decision_ns,
            "program_args_start": self.program_args_start,
            "candidate": None,
        }
        if self.candidate_command is not None:
            data["candidate"] = {
                "command": list(self.candidate_command),
                "env": dict(self.candidate_env),
            }
        return json.dumps(data, indent=1, sort_keys=True)


def _find_spec_problems(spec: HarnessSpec) -> List[str]:
    problems: List[str] = []
    for name, command in (("command", spec.command), ("candidate_command", spec.candidate_command)):
        if command is None and name == "candidate_command":
            continue
        if not command or not all(isinstance(arg, str) for arg in command):
            problems.append(f"{name}: expected a non-empty list of strings, got {command!r}")
    for name, minimum in (
        ("warmup", 0),
        ("min_runs", 1),
        ("max_runs", 1),
        ("importtime_runs", 0),
        ("importtime_level", 1),
        ("max_output_bytes", 0),
        ("max_importtime_bytes", 0),
    ):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            problems.append(f"{name}: expected an integer >= {minimum}, got {value!r}")
    names = ("target_rel_ci", "timeout_s") + (
        ("decision_ns",) if spec.decision_ns is not None else ()
    )
    for name in names:
        value = getattr(spec, name)
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            problems.append(f"{name}: expected a finite number > 0, got {value!r}")
    start = spec.program_args_start
    if start is not None and (isinstance(start, bool) or not isinstance(start, int) or start < 1):
        problems.append(f"program_args_start: expected an integer >= 1 or None, got {start!r}")
    if not problems and spec.max_runs < spec.min_runs:
        problems.append(f"max_runs: {spec.max_runs} is less than min_runs {spec.min_runs}")
    return problems


@dataclass(frozen=True)
class Sample:
    """One successful timed run. CPU times are in seconds."""

    wall_ns: int
    max_rss_bytes: int
    user_s: float
    sys_s: float
    children_user_s: float
    children_sys_s: float
    stdout_bytes: int
    stderr_bytes: int


@dataclass(frozen=True)
class RunFailure:
    """A run that did not exit with status 0.

    `kind` is one of exit, signal, timeout or spawn. A spawn failure means that the command
    could not be started, and `error` contains the OS error. `stderr_tail` contains the last
    bytes of stderr, decoded as UTF-8.
    """

    phase: str
    kind: str
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    signal_name: Optional[str] = None
    wall_ns: Optional[int] = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stderr_tail: str = ""
    error: str = ""

    def describe(self) -> str:
        if self.kind == "spawn":
            return f"could not start: {self.error}"
        if self.kind == "timeout":
            return f"timed out after {(self.wall_ns or 0) / 1e9:.1f} s and was killed"
        if self.kind == "signal":
            return f"was killed by {self.signal_name or self.signal}"
        return f"exited with status {self.exit_code}"


@dataclass(frozen=True)
class ImportTimeCapture:
    """The stderr of one run with PYTHONPROFILEIMPORTTIME set.

    `truncated` means that stderr was cut to its tail. `modules_at_exit` contains the names in
    sys.modules when the program's processes exited, or None if no process recorded them.
    """

    stderr: str
    truncated: bool
    modules_at_exit: Optional[Tuple[str, ...]] = None

    @functools.cached_property
    def full_profile(self) -> ImportProfile:
        """Return every import in the output, the launcher's included."""
        return parse_importtime(self.stderr)

    @functools.cached_property
    def profile(self) -> ImportProfile:
        """Return the program's imports: the output without the launcher's imports."""
        return self.full_profile.without_launcher()


@dataclass(frozen=True)
class VariantResult:
    """All runs of one command: timed samples, failures and importtime captures.

    `instructions` is the instruction count of one run, summed over its processes, or None if
    none was taken; `instruction_counter` names the tool that counted it. `tree_rss_bytes` is
    the largest sum of RSS over the command's whole process tree, sampled `tree_rss_samples`
    times in one untimed run through `tree_rss_source` ("psutil" or "/proc"), or None when it
    was not measured.
    """

    command: Tuple[str, ...]
    samples: Tuple[Sample, ...]
    failures: Tuple[RunFailure, ...]
    importtime: Tuple[ImportTimeCapture, ...]
    converged: bool
    warmup_runs: int
    instructions: Optional[int] = None
    instruction_counter: Optional[str] = None
    tree_rss_bytes: Optional[int] = None
    tree_rss_source: Optional[str] = None
    tree_rss_samples: int = 0

    @property
    def wall_ns(self) -> Tuple[int, ...]:
        return tuple(s.wall_ns for s in self.samples)

    @property
    def max_rss_bytes(self) -> Tuple[int, ...]:
        return tuple(s.max_rss_bytes for s in self.samples)

    @property
    def profiles(self) -> Tuple[ImportProfile, ...]:
        return tuple(capture.profile for capture in self.importtime)

    @property
    def full_profiles(self) -> Tuple[ImportProfile, ...]:
        return tuple(capture.full_profile for capture in self.importtime)

    @property
    def launcher_us(self) -> Optional[int]:
        """Return the median import time of the pex launcher per importtime run, or None.

        None means that there were no importtime runs or that no launcher imports appeared.
        """
        times = sorted(profile.launcher_us for profile in self.full_profiles)
        if not times or not any(times):
            return None
        return times[len(times) // 2]

    @property
    def loaded_modules(self) -> frozenset[str]:
        """Return the program's modules loaded in the importtime runs, launcher code excluded.

        The names come from sys.modules at exit when every run recorded them. Otherwise they
        come from the importtime output, which also lists imports that failed and were caught.
        """
        if self.importtime and all(c.modules_at_exit is not None for c in self.importtime):
            names = frozenset().union(*(c.modules_at_exit or () for c in self.importtime))
        else:
            names = frozenset().union(*(p.module_names for p in self.profiles))
        return frozenset(name for name in names if not is_launcher_module(name))


@dataclass(frozen=True)
class Environment:
    """The machine and interpreter the harness ran on; load averages are 1, 5 and 15 minutes."""

    python: str
    python_implementation: str
    executable: str
    platform: str
    machine: str
    cpu_model: Optional[str]
    cpu_count: Optional[int]
    loadavg: Optional[Tuple[float, ...]]
    loadavg_after: Optional[Tuple[float, ...]]


@dataclass(frozen=True)
class HarnessResult:
    """The harness output. `candidate` is set only for A/B runs."""

    harness_version: int
    environment: Environment
    baseline: VariantResult
    candidate: Optional[VariantResult]
    elapsed_ns: int

    @property
    def measured(self) -> VariantResult:
        """Return the variant under check: the candidate in A/B runs, else the baseline."""
        return self.candidate if self.candidate is not None else self.baseline

    @classmethod
    def from_json(
        cls, document: Union[str, Mapping[str, Any]], source: str = "harness output"
    ) -> HarnessResult:
        """Validate and convert harness output; raise MalformedHarnessOutput naming the field."""
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as error:
                raise MalformedHarnessOutput(f"{source} is not valid JSON: {error}") from None
        root = _Reader(document, source)
        version = root.integer("harness_version", minimum=1)
        if version != HARNESS_VERSION:
            raise MalformedHarnessOutput(
                f"{source}: harness_version {version} is not supported, expected "
                f"{HARNESS_VERSION}; use the harness shipped with this perfguard version"
            )
        variants = root.child("variants")
        candidate = variants.optional_child("candidate")
        return cls(
            harness_version=version,
            environment=_read_environment(root.child("environment")),
            baseline=_read_variant(variants.child("baseline")),
            candidate=_read_variant(candidate) if candidate is not None else None,
            elapsed_ns=root.integer("elapsed_ns", minimum=0),
        )


def _read_environment(reader: _Reader) -> Environment:
    return Environment(
        python=reader.string("python"),
        python_implementation=reader.string("python_implementation"),
        executable=reader.string("executable"),
        platform=reader.string("platform"),
        machine=reader.string("machine"),
        cpu_model=reader.optional_string("cpu_model"),
        cpu_count=reader.optional_integer("cpu_count"),
        loadavg=reader.optional_numbers("loadavg"),
        loadavg_after=reader.optional_numbers("loadavg_after"),
    )


def _read_variant(reader: _Reader) -> VariantResult:
    return VariantResult(
        command=tuple(reader.strings("command")),
        samples=tuple(_read_sample(item) for item in reader.children("samples")),
        failures=tuple(_read_failure(item) for item in reader.children("failures")),
        importtime=tuple(
            ImportTimeCapture(
                item.string("stderr"),
                item.boolean("truncated"),
                item.optional_strings("modules_at_exit"),
            )
            for item in reader.children("importtime")
        ),
        converged=reader.boolean("converged"),
        warmup_runs=reader.integer("warmup_runs", minimum=0),
        instructions=reader.optional_integer("instructions"),
        instruction_counter=reader.optional_string("instruction_counter"),
        tree_rss_bytes=reader.optional_integer("tree_rss_bytes", minimum=0),
        tree_rss_source=reader.optional_string("tree_rss_source"),
        tree_rss_samples=reader.optional_integer("tree_rss_samples", minimum=0) or 0,
    )


def _read_sample(reader: _Reader) -> Sample:
    return Sample(
        wall_ns=reader.integer("wall_ns", minimum=0),
        max_rss_bytes=reader.integer("max_rss_bytes", minimum=0),
        user_s=reader.number("user_s"),
        sys_s=reader.number("sys_s"),
        children_user_s=reader.number("children_user_s"),
        children_sys_s=reader.number("children_sys_s"),
        stdout_bytes=reader.integer("stdout_bytes", minimum=0),
        stderr_bytes=reader.integer("stderr_bytes", minimum=0),
    )


def _read_failure(reader: _Reader) -> RunFailure:
    kind = reader.choice("kind", FAILURE_KINDS)
    phase = reader.choice("phase", PHASES)
    if kind == "spawn":
        return RunFailure(phase=phase, kind=kind, error=reader.string("error"))
    return RunFailure(
        phase=phase,
        kind=kind,
        exit_code=reader.optional_integer("exit_code"),
        signal=reader.optional_integer("signal"),
        signal_name=reader.optional_string("signal_name"),
        wall_ns=reader.integer("wall_ns", minimum=0),
        stdout_bytes=reader.integer("stdout_bytes", minimum=0),
        stderr_bytes=reader.integer("stderr_bytes", minimum=0),
        stderr_tail=reader.string("stderr_tail"),
    )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Reader:
    """Typed access to one JSON object; errors name the dotted path of the bad field."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise MalformedHarnessOutput(
                f"{path}: expected a JSON object, got {type(data).__name__}"
            )
        self._data: Dict[str, Any] = data
        self._path = path

    def _get(self, key: str) -> Any:
        if key not in self._data:
            raise MalformedHarnessOutput(f"{self._path}.{key}: missing")
        return self._data[key]

    def _fail(self, key: str, expected: str) -> MalformedHarnessOutput:
        value = repr(self._data.get(key))[:80]
        return MalformedHarnessOutput(f"{self._path}.{key}: expected {expected}, got {value}")

    def child(self, key: str) -> _Reader:
        return _Reader(self._get(key), f"{self._path}.{key}")

    def optional_child(self, key: str) -> Optional[_Reader]:
        if self._data.get(key) is None:
            return None
        return self.child(key)

    def children(self, key: str) -> List[_Reader]:
        items = self._get(key)
        if not isinstance(items, list):
            raise self._fail(key, "a list")
        return [_Reader(item, f"{self._path}.{key}[{i}]") for i, item in enumerate(items)]

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def optional_string(self, key: str) -> Optional[str]:
        return None if self._data.get(key) is None else self.string(key)

    def strings(self, key: str) -> List[str]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return value

    def optional_strings(self, key: str) -> Optional[Tuple[str, ...]]:
        return None if self._data.get(key) is None else tuple(self.strings(key))

    def integer(self, key: str, minimum: int = 0) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(key, f"an integer >= {minimum}")
        return value

    def optional_integer(self, key: str, minimum: int = -(2**31)) -> Optional[int]:
        return None if self._data.get(key) is None else self.integer(key, minimum=minimum)

    def number(self, key: str) -> float:
        value = self._get(key)
        if not _is_number(value):
            raise self._fail(key, "a number")
        return float(value)

    def optional_numbers(self, key: str) -> Optional[Tuple[float, ...]]:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise self._fail(key, "a list of numbers")
        return tuple(float(v) for v in value)

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str:
        value = self.string(key)
        if value not in choices:
            raise self._fail(key, "one of " + ", ".join(choices))
        return value
