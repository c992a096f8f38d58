"""Findings: the one result type that every rule and every check produces."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple


class Severity(enum.Enum):
    """How much a finding matters. Only `critical` and `error` block by default."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"Invalid severity {value!r}: expected one of {choices}.") from None


_SEVERITY_RANK = {Severity.critical: 0, Severity.error: 1, Severity.warning: 2, Severity.info: 3}
BLOCKING_SEVERITIES = frozenset({Severity.critical, Severity.error})


@dataclass(frozen=True)
class Cost:
    """A measured startup cost. `None` fields were not measured, never guessed."""

    ms: Optional[float] = None
    mb: Optional[float] = None
    note: str = ""


@dataclass(frozen=True, order=True)
class Location:
    """A place in a source file; `line` and `column` are 1-based, 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Finding:
    """One rule violation or check failure.

    `rule_id` is a stable slug (for example `heavy-import`) that suppressions and baselines
    match on.
    `related` contains extra locations, such as each edge of an import chain or cycle.
    """

    rule_id: str
    severity: Severity
    location: Location
    message: str
    fix: str = ""
    cost: Optional[Cost] = None
    related: Tuple[Location, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING_SEVERITIES

    def sort_key(self) -> Tuple[str, int, int, str, str]:
        loc = self.location
        return (loc.path, loc.line, loc.column, self.rule_id, self.message)

    def format_line(self) -> str:
        """Render as `path:line: rule-id message`, the one-line text form."""
        return f"{self.location}: {self.rule_id} [{self.severity.value}] {self.message}"
