"""Frozen values that mirror the import probe's JSON output, with validating loaders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple, Type, TypeVar

from perfguard.errors import InvalidProbeOutput

PROBE_VERSION = 1
IMPORT_KINDS = frozenset({"import", "from", "importlib", "__import__"})
IMPORT_CONTEXTS = frozenset({"runtime", "typing", "deferred"})

_T = TypeVar("_T")


@dataclass(frozen=True)
class ProbeError:
    """A file that the probe could not read or parse."""

    type: str
    message: str
    line: Optional[int] = None
    column: Optional[int] = None

    @classmethod
    def from_json(cls, data: Any, where: str) -> ProbeError:
        obj = _require_object(data, where)
        return cls(
            type=_field(obj, "type", str, where),
            message=_field(obj, "message", str, where),
            line=_optional_int(obj, "line", where),
            column=_optional_int(obj, "column", where),
        )


@dataclass(frozen=True)
class ImportRecord:
    """One import statement or literal dynamic import.

    `module` is the absolute dotted name, or None when a relative import climbs above the
    top-level package. `context` is `runtime`, `typing` (under a TYPE_CHECKING guard) or
    `deferred` (inside a function or lambda body).
    """

    module: Optional[str]
    raw: str
    line: int
    column: int
    level: int
    names: Tuple[str, ...]
    kind: str
    context: str
    in_try_import_error: bool

    @property
    def is_runtime(self) -> bool:
        return self.context == "runtime"

    def candidate_modules(self) -> Tuple[str, ...]:
        """Return every module this import loads or may load, most specific first.

        `from pkg import x` may load submodule `pkg.x`. Any import also runs the `__init__`
        of each parent package, so `import a.b.c` yields `a.b.c`, `a.b` and `a`.
        """
        if self.module is None:
            return ()
        candidates: List[str] = []
        if self.kind == "from":
            candidates.extend(f"{self.module}.{name}" for name in self.names if name != "*")
        parts = self.module.split(".")
        candidates.extend(".".join(parts[:end]) for end in range(len(parts), 0, -1))
        return tuple(candidates)

    @classmethod
    def from_json(cls, data: Any, where: str) -> ImportRecord:
        obj = _require_object(data, where)
        module = obj.get("module")
        if module is not None and not isinstance(module, str):
            raise _invalid(where, "module", "a string or null", module)
        kind = _field(obj, "kind", str, where)
        context = _field(obj, "context", str, where)
        if kind not in IMPORT_KINDS:
            raise _invalid(where, "kind", f"one of {sorted(IMPORT_KINDS)}", kind)
        if context not in IMPORT_CONTEXTS:
            raise _invalid(where, "context", f"one of {sorted(IMPORT_CONTEXTS)}", context)
        return cls(
            module=module,
            raw=_field(obj, "raw", str, where) if "raw" in obj else (module or ""),
            line=_field(obj, "line", int, where),
            column=_field(obj, "column", int, where),
            level=_field(obj, "level", int, where),
            names=_string_tuple(obj, "names", where),
            kind=kind,
            context=context,
            in_try_import_error=_field(obj, "in_try_import_error", bool, where),
        )


@dataclass(frozen=True)
class ClassRecord:
    """A class statement. `line` is the first decorator line, `lines` spans to `end_line`."""

    name: str
    qualname: str
    line: int
    end_line: int
    lines: int
    body_lines: int

    @classmethod
    def from_json(cls, data: Any, where: str) -> ClassRecord:
        obj = _require_object(data, where)
        return cls(
            name=_field(obj, "name", str, where),
            qualname=_field(obj, "qualname", str, where),
            line=_field(obj, "line", int, where),
            end_line=_field(obj, "end_line", int, where),
            lines=_field(obj, "lines", int, where),
            body_lines=_field(obj, "body_lines", int, where),
        )


@dataclass(frozen=True)
class TypingNameUse:
    """A name bound only under TYPE_CHECKING but evaluated while the module is imported."""

    name: str
    line: int
    column: int
    use: str

    @classmethod
    def from_json(cls, data: Any, where: str) -> TypingNameUse:
        obj = _require_object(data, where)
        return cls(
            name=_field(obj, "name", str, where),
            line=_field(obj, "line", int, where),
            column=_field(obj, "column", int, where),
            use=_field(obj, "use", str, where),
        )


@dataclass(frozen=True)
class Suppression:
    """A `# perfguard: ignore[rule-id] reason` comment. An empty `reason` makes it invalid."""

    line: int
    rules: Tuple[str, ...]
    reason: str

    @classmethod
    def from_json(cls, data: Any, where: str) -> Suppression:
        obj = _require_object(data, where)
        return cls(
            line=_field(obj, "line", int, where),
            rules=_string_tuple(obj, "rules", where),
            reason=_field(obj, "reason", str, where),
        )


@dataclass(frozen=True)
class FileAnalysis:
    """Everything the probe reports about one source file."""

    path: str
    module: str
    lines: int = 0
    error: Optional[ProbeError] = None
    imports: Tuple[ImportRecord, ...] = ()
    classes: Tuple[ClassRecord, ...] = ()
    runtime_uses_of_typing_names: Tuple[TypingNameUse, ...] = ()
    suppressions: Tuple[Suppression, ...] = ()
    future_annotations: bool = False

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")

    @classmethod
    def from_json(cls, data: Any, where: str = "file") -> FileAnalysis:
        obj = _require_object(data, where)
        error_data = obj.get("error")
        error = None if error_data is None else ProbeError.from_json(error_data, f"{where}.error")
        return cls(
            path=_field(obj, "path", str, where),
            module=_field(obj, "module", str, where),
            lines=_field(obj, "lines", int, where),
            error=error,
            imports=_records(obj, "imports", ImportRecord, where),
            classes=_records(obj, "classes", ClassRecord, where),
            runtime_uses_of_typing_names=_records(
                obj, "runtime_uses_of_typing_names", TypingNameUse, where
            ),
            suppressions=_records(obj, "suppressions", Suppression, where),
            future_annotations=_field(obj, "future_annotations", bool, where),
        )


@dataclass(frozen=True)
class ProbeResult:
    """The probe's whole document: the interpreter version and one analysis per file."""

    python: str
    files: Tuple[FileAnalysis, ...]

    @classmethod
    def from_json(cls, data: Any) -> ProbeResult:
        obj = _require_object(data, "probe output")
        version = obj.get("probe_version")
        if version != PROBE_VERSION:
            raise InvalidProbeOutput(
                f"Invalid probe output: probe_version is {version!r}, expected {PROBE_VERSION}. "
                "Run the import_probe.py that ships with this perfguard version."
            )
        files = obj.get("files")
        if not isinstance(files, list):
            raise _invalid("probe output", "files", "a list", files)
        return cls(
            python=_field(obj, "python", str, "probe output"),
            files=tuple(
                FileAnalysis.from_json(item, f"files[{index}]") for index, item in enumerate(files)
            ),
        )


def _invalid(where: str, key: str, expected: str, value: Any) -> InvalidProbeOutput:
    return InvalidProbeOutput(
        f"Invalid probe output: {where}.{key} must be {expected}, got {value!r}. "
        "The probe and the engine are probably from different perfguard versions."
    )


def _require_object(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidProbeOutput(
            f"Invalid probe output: {where} must be a JSON object, got {type(data).__name__}."
        )
    return data


def _field(obj: Mapping[str, Any], key: str, expected: Type[_T], where: str) -> _T:
    if key not in obj:
        raise InvalidProbeOutput(f"Invalid probe output: {where} is missing {key!r}.")
    value = obj[key]
    # NB: bool is a subclass of int, so an int field must reject True and False explicitly.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise _invalid(where, key, expected.__name__, value)
    return value


def _optional_int(obj: Mapping[str, Any], key: str, where: str) -> Optional[int]:
    value = obj.get(key)
    if value is None:
        return None
    return _field(obj, key, int, where)


def _string_tuple(obj: Mapping[str, Any], key: str, where: str) -> Tuple[str, ...]:
    values = _field(obj, key, list, where)
    if not all(isinstance(value, str) for value in values):
        raise _invalid(where, key, "a list of strings", values)
    return tuple(values)


def _records(obj: Mapping[str, Any], key: str, record_type: Any, where: str) -> Tuple[Any, ...]:
    values = _field(obj, key, list, where)
    return tuple(
        record_type.from_json(value, f"{where}.{key}[{i}]") for i, value in enumerate(values)
    )
