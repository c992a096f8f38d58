"""The stdlib-only startup harness loaded as a module, and the interpreters its tests run."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from perfguard.startup.measure import HARNESS_PATH

PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))) / "versions"
PYTHON_37 = PYENV_VERSIONS / "3.7.16" / "bin" / "python3.7"


def load_harness() -> ModuleType:
    """Import `startup_harness.py` from its path, the way the goal ships it into a sandbox."""
    spec = importlib.util.spec_from_file_location("startup_harness", HARNESS_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
