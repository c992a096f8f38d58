"""Baseline files: findings accepted for now, matched without line numbers.

A baseline is JSON of the form
`{"schema_version": 1, "entries": [{"rule_id", "path", "fingerprint", "message"}, ...]}`
with entries sorted. The fingerprint is line-independent (a module, class or cycle name), so
an entry keeps matching when code above it moves. Equal keys are matched as a multiset: two
entries accept two identical findings, not more.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from perfguard.errors import InvalidBaseline
from perfguard.findings import Finding

logger = logging.getLogger(__name__)

BASELINE_SCHEMA_VERSION = 1


@dataclass(frozen=True, order=True)
class BaselineEntry:
    """One accepted finding. `message` is informational and is not used for matching."""

    rule_id: str
    path: str
    fingerprint: str
    message: str = ""

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.rule_id, self.path, self.fingerprint)


@dataclass(frozen=True)
class Baseline:
    """A set of accepted findings, in sorted order."""

    entries: Tuple[BaselineEntry, ...] = ()


@dataclass(frozen=True)
class BaselineResult:
    """Findings split by the baseline, plus entries that no finding matched any more."""

    new: Tuple[Finding, ...]
    matched: Tuple[Finding, ...]
    stale: Tuple[BaselineEntry, ...]


def fingerprint_of(finding: Finding) -> str:
    """Return the line-independent identity that rules store in `data["fingerprint"]`."""
    fingerprint = finding.data.get("fingerprint")
    return str(fingerprint) if fingerprint is not None else finding.message


def entry_for(finding: Finding) -> BaselineEntry:
    return BaselineEntry(
        rule_id=finding.rule_id,
        path=finding.location.path,
        fingerprint=fingerprint_of(finding),
        message=finding.message,
    )


def build_baseline(findings: Sequence[Finding]) -> Baseline:
    return Baseline(tuple(sorted(entry_for(finding) for finding in findings)))


def apply_baseline(findings: Sequence[Finding], baseline: Baseline) -> BaselineResult:
    """Split findings into new ones (which still count) and ones the baseline accepts."""
    available = Counter(entry.key for entry in baseline.entries)
    new: List[Finding] = []
    matched: List[Finding] = []
    for finding in findings:
        key = entry_for(finding).key
        if available[key] > 0:
            available[key] -= 1
            matched.append(finding)
        else:
            new.append(finding)
    stale: List[BaselineEntry] = []
    for entry in baseline.entries:
        if available[entry.key] > 0:
            available[entry.key] -= 1
            stale.append(entry)
    return BaselineResult(new=tuple(new), matched=tuple(matched), stale=tuple(stale))


def render_baseline(baseline: Baseline) -> str:
    document = {
        "schema_version": BASELINE_SCHEMA_VERSION,
        "entries": [
            {
                "rule_id": entry.rule_id,
                "path": entry.path,
                "fingerprint": entry.fingerprint,
                "message": entry.message,
            }
            for entry in sorted(baseline.entries)
        ],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def read_baseline(path: Union[str, Path]) -> Baseline:
    """Load a baseline file. A missing file is an empty baseline.

    Raises:
        InvalidBaseline: the file cannot be read, is not valid JSON, or has another schema.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Baseline()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidBaseline(f"Failed to read baseline {path}: {e}.") from None
    try:
        document = json.loads(text)
    except ValueError as e:
        raise InvalidBaseline(
            f"Invalid baseline {path}: not JSON ({e}). Fix the file or delete it and rerun "
            "with --update-baseline."
        ) from None
    return Baseline(_parse_entries(document, path))


def write_baseline(path: Union[str, Path], baseline: Baseline) -> None:
    """Write the baseline atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    text = render_baseline(baseline)
    folder = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temporary_file:
            temporary_file.write(text)
            temporary_file.flush()
            os.fsync(temporary_file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    logger.info("Wrote %d baseline entries to %s.", len(baseline.entries), path)


def _parse_entries(document: Any, path: Path) -> Tuple[BaselineEntry, ...]:
    if not isinstance(document, dict):
        raise InvalidBaseline(f"Invalid baseline {path}: expected a JSON object at the top.")
    version = document.get("schema_version")
    if version != BASELINE_SCHEMA_VERSION:
        raise InvalidBaseline(
            f"Invalid baseline {path}: schema_version is {version!r}, but this perfguard reads "
            f"version {BASELINE_SCHEMA_VERSION}. Regenerate it with --update-baseline."
        )
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise InvalidBaseline(f"Invalid baseline {path}: 'entries' must be a list.")
    parsed = []
    for index, entry in enumerate(entries):
        parsed.append(_parse_entry(entry, index, path))
    return tuple(sorted(parsed))


def _parse_entry(entry: Any, index: int, path: Path) -> BaselineEntry:
    fields: Dict[str, str] = {}
    for key in ("rule_id", "path", "fingerprint"):
        value = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(value, str) or not value:
            raise InvalidBaseline(
                f"Invalid baseline {path}: entries[{index}] needs a non-empty string {key!r}."
            )
        fields[key] = value
    message = entry.get("message", "")
    return BaselineEntry(message=message if isinstance(message, str) else "", **fields)
