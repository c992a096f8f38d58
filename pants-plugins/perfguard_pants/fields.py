"""Target fields that perfguard adds to Python source and `pex_binary` targets."""

from __future__ import annotations

from pants.backend.python.target_types import (
    PexBinariesGeneratorTarget,
    PexBinary,
    PythonSourcesGeneratorTarget,
    PythonSourceTarget,
    PythonTestsGeneratorTarget,
    PythonTestTarget,
    PythonTestUtilsGeneratorTarget,
)
from pants.engine.target import (
    BoolField,
    DictStringToStringField,
    FloatField,
    IntField,
    StringSequenceField,
)

_SOURCE_TARGET_TYPES = (
    PythonSourceTarget,
    PythonSourcesGeneratorTarget,
    PythonTestTarget,
    PythonTestsGeneratorTarget,
    PythonTestUtilsGeneratorTarget,
)
_BINARY_TARGET_TYPES = (PexBinary, PexBinariesGeneratorTarget)


class SkipArchLintField(BoolField):
    alias = "skip_arch_lint"
    default = False
    help = "If true, `arch-lint` does not check these files (they stay in the import graph)."


class ArchLintProtocolField(BoolField):
    alias = "arch_lint_protocol"
    default = False
    help = (
        "If true, these files are protocol or interface files: `arch-lint` reports heavy "
        "modules that they import at runtime, as it does for files matching "
        "`[arch-lint].protocol_globs`."
    )


class SkipStartupCheckField(BoolField):
    alias = "skip_startup_check"
    default = False
    help = "If true, `startup-check` does not build or measure this binary."


class _PositiveFloatField(FloatField):
    @classmethod
    def compute_value(cls, raw_value, address):  # type: ignore[no-untyped-def]
        # FloatField rejects whole numbers, but `startup_budget_ms=300` is the natural spelling.
        if isinstance(raw_value, int) and not isinstance(raw_value, bool):
            raw_value = float(raw_value)
        value = super().compute_value(raw_value, address)
        if value is not None and value <= 0:
            raise ValueError(
                f"Invalid `{cls.alias}={value}` in {address}: the budget must be a positive number."
            )
        return value


class StartupBudgetMsField(_PositiveFloatField):
    alias = "startup_budget_ms"
    help = "Startup time budget in milliseconds; overrides `[startup-check].budget_ms`."


class StartupMemoryBudgetMbField(_PositiveFloatField):
    alias = "startup_memory_budget_mb"
    help = (
        "Peak memory budget in megabytes (10^6 bytes); overrides "
        "`[startup-check].memory_budget_mb`."
    )


class StartupImportBudgetMsField(_PositiveFloatField):
    alias = "startup_import_budget_ms"
    help = (
        "Budget for any single import in milliseconds; overrides "
        "`[startup-check].import_budget_ms`."
    )


class StartupHeavyImportsBudgetField(IntField):
    alias = "startup_heavy_imports_budget"
    help = (
        "Number of heavy modules this binary may load at startup; overrides "
        "`[startup-check].heavy_imports_budget`."
    )


class StartupCheckArgsField(StringSequenceField):
    alias = "startup_check_args"
    help = (
        "Arguments for the measured runs, after any `args` of the binary itself, for example "
        '`["--version"]` for a CLI or a dry-run flag for a server.'
    )


class StartupCheckEnvField(DictStringToStringField):
    alias = "startup_check_env"
    help = "Environment variables for the measured runs, added to the binary's own `env`."


SOURCE_FIELDS = (SkipArchLintField, ArchLintProtocolField)
BINARY_FIELDS = (
    SkipStartupCheckField,
    StartupBudgetMsField,
    StartupMemoryBudgetMbField,
    StartupImportBudgetMsField,
    StartupHeavyImportsBudgetField,
    StartupCheckArgsField,
    StartupCheckEnvField,
)


def rules():  # type: ignore[no-untyped-def]
    return [
        *(tt.register_plugin_field(f) for tt in _SOURCE_TARGET_TYPES for f in SOURCE_FIELDS),
        *(tt.register_plugin_field(f) for tt in _BINARY_TARGET_TYPES for f in BINARY_FIELDS),
    ]
