"""Arch-lint settings, the rule catalog and path-glob matching."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Pattern, Tuple

from perfguard.errors import InvalidConfiguration
from perfguard.findings import Severity

DEFAULT_HEAVY_MODULES = ("sqlalchemy", "asyncpg", "torch", "pandas", "numpy")
DEFAULT_CLASS_LINE_LIMIT = 500
# pydantic (v1 and v2) resolves field annotations when a model class is created, so names
# they use must be importable at runtime even under `from __future__ import annotations`.
DEFAULT_INTROSPECTED_CLASSES = ("pydantic.BaseModel", "pydantic.dataclasses.dataclass")

_MODULE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class RuleInfo:
    """A rule's stable id, default severity and one-line summary."""

    rule_id: str
    default_severity: Severity
    summary: str


RULES: Mapping[str, RuleInfo] = {
    info.rule_id: info
    for info in (
        RuleInfo("parse-error", Severity.error, "A source file cannot be read or parsed."),
        RuleInfo(
            "heavy-import",
            Severity.critical,
            "A protocol file imports a heavy module while it is being imported.",
        ),
        RuleInfo(
            "guarded-name-at-runtime",
            Severity.error,
            "A name imported only under TYPE_CHECKING is evaluated at import time.",
        ),
        RuleInfo(
            "transitive-heavy-import",
            Severity.error,
            "A protocol file reaches a heavy module through first-party runtime imports.",
        ),
        RuleInfo(
            "import-cycle",
            Severity.critical,
            "Modules import each other. Only cycles of import-time edges block.",
        ),
        RuleInfo("god-object", Severity.warning, "A class is longer than the line limit."),
        RuleInfo(
            "invalid-suppression",
            Severity.warning,
            "A suppression comment has no reason or names an unknown rule.",
        ),
    )
}

# Cycles that need a deferred edge, or that close only through TYPE_CHECKING imports, never run
# at import time, so they get these fixed severities and never block.
DEFERRED_CYCLE_SEVERITY = Severity.warning
TYPING_CYCLE_SEVERITY = Severity.info


@dataclass(frozen=True)
class AllowedException:
    """A `rule-id:path-glob` or `rule-id:module` entry that accepts matching findings."""

    entry: str
    rule_id: str
    path_glob: Optional[str] = None
    module: Optional[str] = None

    def matches(self, *, rule_id: str, path: str, modules: Iterable[str]) -> bool:
        if rule_id != self.rule_id:
            return False
        if self.path_glob is not None:
            return match_glob(self.path_glob, path)
        prefix = f"{self.module}."
        return any(name == self.module or name.startswith(prefix) for name in modules)


@dataclass(frozen=True)
class ArchLintConfig:
    """Settings for the arch-lint rules.

    heavy_modules: top-level or dotted modules that protocol files must not import at runtime.
        Submodules match (`sqlalchemy.orm`), names that only share a prefix do not (`numpyro`).
    protocol_globs: build-root-relative path globs of protocol files. `*` and `?` stay inside
        one path segment, `**/` matches zero or more folders.
    class_line_limit: the `god-object` rule reports classes with more lines than this.
    severities: per-rule severity overrides as (rule id, severity) pairs. For `import-cycle`
        the override applies to import-time cycles only.
    allowed_exceptions: `rule-id:path-glob` or `rule-id:module` entries. A module entry matches
        the finding's file module or the module the finding is about (the heavy module, the
        guarded name's import), including their submodules.
    first_party_modules: top-level module names of the repository's own code. An import of one
        of them is never a heavy import, even if a heavy library has the same name.
    introspected_classes: dotted names of base classes and class decorators that read a class's
        annotations when the class is created. Names in those annotations that are imported
        only under TYPE_CHECKING are reported, quoted or postponed or not. Only direct bases
        and decorators count, so a subclass of a first-party model is not recognised.
    """

    heavy_modules: Tuple[str, ...] = DEFAULT_HEAVY_MODULES
    protocol_globs: Tuple[str, ...] = ()
    class_line_limit: int = DEFAULT_CLASS_LINE_LIMIT
    severities: Tuple[Tuple[str, Severity], ...] = ()
    allowed_exceptions: Tuple[AllowedException, ...] = ()
    first_party_modules: FrozenSet[str] = field(default_factory=frozenset)
    introspected_classes: Tuple[str, ...] = DEFAULT_INTROSPECTED_CLASSES

    def severity_for(self, rule_id: str) -> Severity:
        for overridden_rule, severity in self.severities:
            if overridden_rule == rule_id:
                return severity
        return RULES[rule_id].default_severity

    def is_protocol_path(self, path: str) -> bool:
        return any(match_glob(glob, path) for glob in self.protocol_globs)

    @classmethod
    def from_options(
        cls,
        *,
        heavy_modules: Optional[Iterable[str]] = None,
        protocol_globs: Iterable[str] = (),
        class_line_limit: Any = DEFAULT_CLASS_LINE_LIMIT,
        severities: Optional[Mapping[str, str]] = None,
        allowed_exceptions: Iterable[str] = (),
        first_party_modules: Iterable[str] = (),
        introspected_classes: Optional[Iterable[str]] = None,
    ) -> ArchLintConfig:
        """Build a config from loose option values, reporting every invalid value at once.

        Raises:
            InvalidConfiguration: lists each invalid value with the way to fix it.
        """
        problems: List[str] = []
        heavy = _check_modules(
            DEFAULT_HEAVY_MODULES if heavy_modules is None else heavy_modules,
            "heavy_modules",
            problems,
        )
        globs = _check_globs(protocol_globs, problems)
        limit = _check_limit(class_line_limit, problems)
        severity_pairs = _check_severities(severities or {}, problems)
        exceptions = _check_exceptions(allowed_exceptions, problems)
        first_party = _check_modules(first_party_modules, "first_party_modules", problems)
        introspected = _check_modules(
            DEFAULT_INTROSPECTED_CLASSES if introspected_classes is None else introspected_classes,
            "introspected_classes",
            problems,
        )
        if problems:
            raise InvalidConfiguration(problems)
        return cls(
            heavy_modules=heavy,
            protocol_globs=globs,
            class_line_limit=limit,
            severities=severity_pairs,
            allowed_exceptions=exceptions,
            first_party_modules=frozenset(first_party),
            introspected_classes=introspected,
        )


def match_glob(glob: str, path: str) -> bool:
    """Match a build-root-relative path against a glob with `**`, `*`, `?` and `[...]`."""
    return _compile_glob(glob).fullmatch(path) is not None


_GLOB_CACHE: Dict[str, Pattern[str]] = {}


def _compile_glob(glob: str) -> Pattern[str]:
    compiled = _GLOB_CACHE.get(glob)
    if compiled is not None:
        return compiled
    pattern = []
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            pattern.append("(?:.*/)?")
            index += 3
        elif glob.startswith("**", index):
            pattern.append(".*")
            index += 2
        elif glob[index] == "*":
            pattern.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            pattern.append("[^/]")
            index += 1
        elif glob[index] == "[" and "]" in glob[index + 2 :]:
            end = glob.index("]", index + 2)
            body = glob[index + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            pattern.append(f"[{body}]")
            index = end + 1
        else:
            pattern.append(re.escape(glob[index]))
            index += 1
    compiled = re.compile("".join(pattern))
    _GLOB_CACHE[glob] = compiled
    return compiled


def _check_modules(values: Iterable[str], option: str, problems: List[str]) -> Tuple[str, ...]:
    if isinstance(values, str):
        problems.append(f"{option}: expected a list of module names, got the string {values!r}.")
        return ()
    checked = []
    for value in values:
        if not isinstance(value, str) or not _MODULE_NAME_RE.match(value):
            problems.append(
                f"{option}: {value!r} is not a dotted module name. "
                "Use names like `torch` or `sqlalchemy.orm`."
            )
        else:
            checked.append(value)
    return tuple(sorted(set(checked)))


def _check_globs(values: Iterable[str], problems: List[str]) -> Tuple[str, ...]:
    if isinstance(values, str):
        problems.append(f"protocol_globs: expected a list of globs, got the string {values!r}.")
        return ()
    checked = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            problems.append(
                f"protocol_globs: {value!r} is empty. Use a glob like `**/protocols.py`."
            )
        elif value.startswith("/") or "\\" in value:
            problems.append(
                f"protocol_globs: {value!r} is not build-root-relative. "
                "Write it with forward slashes and no leading `/`, like `src/**/interfaces/*.py`."
            )
        else:
            checked.append(value)
    return tuple(checked)


def _check_limit(value: Any, problems: List[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(
            f"class_line_limit: {value!r} is invalid. Use a positive whole number of lines, "
            f"such as the default {DEFAULT_CLASS_LINE_LIMIT}."
        )
        return DEFAULT_CLASS_LINE_LIMIT
    return value


def _check_severities(
    values: Mapping[str, str], problems: List[str]
) -> Tuple[Tuple[str, Severity], ...]:
    pairs = []
    for rule_id, value in sorted(values.items()):
        if rule_id not in RULES:
            problems.append(f"severities: unknown rule {rule_id!r}. Known rules: {_rule_list()}.")
            continue
        try:
            pairs.append((rule_id, Severity.parse(str(value))))
        except ValueError as e:
            problems.append(f"severities: rule {rule_id!r}: {e}")
    return tuple(pairs)


def _check_exceptions(values: Iterable[str], problems: List[str]) -> Tuple[AllowedException, ...]:
    checked = []
    for value in values:
        rule_id, separator, target = str(value).partition(":")
        rule_id, target = rule_id.strip(), target.strip()
        if not separator or not target:
            problems.append(
                f"allowed_exceptions: {value!r} is invalid. "
                "Write `rule-id:path-glob` or `rule-id:module`, like `heavy-import:src/app/*.py`."
            )
        elif rule_id not in RULES:
            problems.append(
                f"allowed_exceptions: {value!r} names unknown rule {rule_id!r}. "
                f"Known rules: {_rule_list()}."
            )
        elif _MODULE_NAME_RE.match(target) and not target.endswith(".py"):
            checked.append(AllowedException(entry=str(value), rule_id=rule_id, module=target))
        else:
            checked.append(AllowedException(entry=str(value), rule_id=rule_id, path_glob=target))
    return tuple(checked)


def _rule_list() -> str:
    return ", ".join(sorted(RULES))
