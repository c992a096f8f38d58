"""Exceptions raised by the startup-check engine; each message names the input at fault."""

from __future__ import annotations

from perfguard.errors import PerfguardError


class StartupCheckError(PerfguardError):
    """Indicates that a startup check could not run or could not read its inputs."""


class InvalidSpec(StartupCheckError):
    """Indicates a harness spec with missing or invalid fields."""


class InvalidBudgets(StartupCheckError, ValueError):
    """Indicates budget values that are not positive numbers."""


class MalformedHarnessOutput(StartupCheckError):
    """Indicates that the harness output is not the JSON document the engine expects."""


class HarnessFailed(StartupCheckError):
    """Indicates that the harness process itself failed, before measuring anything."""


class BaselineError(StartupCheckError):
    """Indicates a baseline file that cannot be used; the file is left unchanged."""


class BaselineNotFound(BaselineError):
    """Indicates that the baseline file does not exist."""


class CorruptBaseline(BaselineError):
    """Indicates a baseline file that is not valid JSON or misses required fields."""


class BaselineMismatch(BaselineError):
    """Indicates a baseline written for another binary or with another schema version."""
