"""perfguard: the `arch-lint` and `startup-check` goals for Python targets."""

from __future__ import annotations


def rules():
    return []
