"""perfguard: the `arch-lint` and `startup-check` goals for Python targets.

`arch-lint` checks Python sources against architecture rules on the build's dependency graph,
and `startup-check` builds `pex_binary` targets and measures their startup against budgets.
"""

from __future__ import annotations

from perfguard_pants import arch_lint, engine_calls, fields, startup_check


def rules():  # type: ignore[no-untyped-def]
    return [
        *arch_lint.rules(),
        *engine_calls.rules(),
        *fields.rules(),
        *startup_check.rules(),
    ]
