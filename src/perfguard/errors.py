"""Exceptions raised by the perfguard engine, all under one base class."""

from __future__ import annotations

from typing import Iterable, Tuple


class PerfguardError(Exception):
    """Indicates a failure that callers report as a message, without a traceback."""


class InvalidConfiguration(PerfguardError):
    """Indicates option values that fail validation. `problems` lists each one with its fix."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: Tuple[str, ...] = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Invalid perfguard configuration:\n{lines}")


class InvalidProbeOutput(PerfguardError):
    """Indicates that the import probe printed a document that does not match its schema."""


class ProbeFailed(PerfguardError):
    """Indicates that the import probe process exited with an error or could not start."""


class InvalidBaseline(PerfguardError):
    """Indicates a baseline file that cannot be read, parsed or matched to this version."""
