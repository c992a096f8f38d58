"""Import classification by the real probe, under several real interpreters."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Dict, List, Tuple

import pytest
from conftest import probe_sources, require_python  # pants: no-infer-dep

from perfguard.archlint.model import FileAnalysis, ImportRecord

INTERPRETERS = ("3.9", "3.12")

# (case id, source, expected context of the import of `target_mod`, expected in_try flag,
# expected kind). Every source imports `target_mod` exactly once.
CONTEXT_CASES: List[Tuple[str, str, str, bool, str]] = [
    ("module level", "import target_mod", "runtime", False, "import"),
    ("from import", "from target_mod import x", "runtime", False, "from"),
    (
        "bare TYPE_CHECKING",
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "typing.TYPE_CHECKING",
        """
        import typing
        if typing.TYPE_CHECKING:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "typing module alias",
        """
        import typing as t
        if t.TYPE_CHECKING:
            from target_mod import x
        """,
        "typing",
        False,
        "from",
    ),
    (
        "TYPE_CHECKING name alias",
        """
        from typing import TYPE_CHECKING as TC
        if TC:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "typing_extensions name",
        """
        from typing_extensions import TYPE_CHECKING
        if TYPE_CHECKING:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "typing_extensions alias",
        """
        import typing_extensions as te
        if te.TYPE_CHECKING:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "module constant",
        """
        TYPE_CHECKING = False
        if TYPE_CHECKING:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "and compound",
        """
        import sys
        from typing import TYPE_CHECKING
        if TYPE_CHECKING and sys.version_info >= (3, 8):
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "or compound runs",
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING or debug:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "else of unrelated and",
        """
        if debug and verbose:
            pass
        else:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "not TYPE_CHECKING runs",
        """
        from typing import TYPE_CHECKING
        if not TYPE_CHECKING:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "else branch runs",
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            pass
        else:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "else of not TYPE_CHECKING",
        """
        from typing import TYPE_CHECKING
        if not TYPE_CHECKING:
            pass
        else:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "elif TYPE_CHECKING",
        """
        from typing import TYPE_CHECKING
        if debug:
            pass
        elif TYPE_CHECKING:
            import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "version if inside guard",
        """
        import sys
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            if sys.version_info >= (3, 8):
                import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "guard inside platform if",
        """
        import sys
        from typing import TYPE_CHECKING
        if sys.platform == "linux":
            if TYPE_CHECKING:
                import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "version_info branch runs",
        """
        import sys
        if sys.version_info >= (3, 8):
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "platform else runs",
        """
        import sys
        if sys.platform == "win32":
            pass
        else:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "function body",
        """
        def load():
            import target_mod
        """,
        "deferred",
        False,
        "import",
    ),
    (
        "async function body",
        """
        async def load():
            import target_mod
        """,
        "deferred",
        False,
        "import",
    ),
    (
        "method body",
        """
        class Loader:
            def load(self):
                from target_mod import x
        """,
        "deferred",
        False,
        "from",
    ),
    ("lambda body", "load = lambda: __import__('target_mod')", "deferred", False, "__import__"),
    (
        "class body",
        """
        class Config:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "decorator",
        """
        @register(__import__("target_mod"))
        def handler():
            pass
        """,
        "runtime",
        False,
        "__import__",
    ),
    (
        "default value",
        """
        def handler(plugin=__import__("target_mod")):
            pass
        """,
        "runtime",
        False,
        "__import__",
    ),
    (
        "try ImportError",
        """
        try:
            import target_mod
        except ImportError:
            target_mod = None
        """,
        "runtime",
        True,
        "import",
    ),
    (
        "try ModuleNotFoundError",
        """
        try:
            import target_mod
        except ModuleNotFoundError:
            pass
        """,
        "runtime",
        True,
        "import",
    ),
    (
        "try bare except",
        """
        try:
            import target_mod
        except:
            pass
        """,
        "runtime",
        True,
        "import",
    ),
    (
        "try Exception",
        """
        try:
            import target_mod
        except Exception:
            pass
        """,
        "runtime",
        True,
        "import",
    ),
    (
        "try tuple handler",
        """
        try:
            import target_mod
        except (ValueError, ImportError):
            pass
        """,
        "runtime",
        True,
        "import",
    ),
    (
        "try ValueError only",
        """
        try:
            import target_mod
        except ValueError:
            pass
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "import in handler",
        """
        try:
            import fast_mod
        except ImportError:
            import target_mod
        """,
        "runtime",
        False,
        "import",
    ),
    (
        "importlib module level",
        """
        import importlib
        plugin = importlib.import_module("target_mod")
        """,
        "runtime",
        False,
        "importlib",
    ),
    (
        "importlib alias",
        """
        import importlib as il
        plugin = il.import_module("target_mod")
        """,
        "runtime",
        False,
        "importlib",
    ),
    (
        "import_module name alias",
        """
        from importlib import import_module as load
        plugin = load("target_mod")
        """,
        "runtime",
        False,
        "importlib",
    ),
    (
        "__import__ in function",
        """
        def load():
            return __import__("target_mod")
        """,
        "deferred",
        False,
        "__import__",
    ),
    (
        "importlib under guard",
        """
        import importlib
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            importlib.import_module("target_mod")
        """,
        "typing",
        False,
        "importlib",
    ),
    (
        "function under guard",
        """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            def load():
                import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "guard inside function",
        """
        from typing import TYPE_CHECKING
        def load():
            if TYPE_CHECKING:
                import target_mod
        """,
        "typing",
        False,
        "import",
    ),
    (
        "guard inside class",
        """
        from typing import TYPE_CHECKING
        class Config:
            if TYPE_CHECKING:
                import target_mod
        """,
        "typing",
        False,
        "import",
    ),
]


def _module_name(case_id: str) -> str:
    return "cases." + "".join(c if c.isalnum() else "_" for c in case_id.lower())


@pytest.fixture(scope="module", params=INTERPRETERS)
def probed_cases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Dict[str, FileAnalysis]:
    python = require_python(request.param)  # type: ignore[attr-defined]
    sources = {
        _module_name(case_id): dedent(source).encode("utf-8")
        for case_id, source, _, _, _ in CONTEXT_CASES
    }
    result = probe_sources(tmp_path_factory.mktemp("contexts"), python, sources)
    return {analysis.module: analysis for analysis in result.files}


def _target_import(analysis: FileAnalysis) -> ImportRecord:
    matches = [record for record in analysis.imports if record.module == "target_mod"]
    assert len(matches) == 1, analysis.imports
    return matches[0]


@pytest.mark.parametrize(
    "case_id, expected_context, expected_in_try, expected_kind",
    [(case[0], case[2], case[3], case[4]) for case in CONTEXT_CASES],
    ids=[case[0] for case in CONTEXT_CASES],
)
def test_import_context(
    probed_cases: Dict[str, FileAnalysis],
    case_id: str,
    expected_context: str,
    expected_in_try: bool,
    expected_kind: str,
) -> None:
    analysis = probed_cases[_module_name(case_id)]
    assert analysis.error is None

    record = _target_import(analysis)

    assert record.context == expected_context
    assert record.in_try_import_error is expected_in_try
    assert record.kind == expected_kind


# (case id, module, is package, source, expected (module, names) of the only import).
RELATIVE_CASES = [
    ("from dot import", "pkg.sub.mod", "from . import x", ("pkg.sub", ("x",))),
    ("from dot module", "pkg.sub.mod", "from .x import y", ("pkg.sub.x", ("y",))),
    ("two dots", "pkg.sub.mod", "from .. import y", ("pkg", ("y",))),
    ("above top level", "pkg.sub.mod", "from ...beyond import z", (None, ("z",))),
    ("package init", "pkg.sub.__init__", "from .a import b", ("pkg.sub.a", ("b",))),
    (
        "importlib __name__",
        "pkg.sub.mod",
        "import importlib\nimportlib.import_module('.x', package=__name__)",
        ("pkg.sub.mod.x", ()),
    ),
    (
        "importlib __package__",
        "pkg.sub.mod",
        "import importlib\nimportlib.import_module('.x', package=__package__)",
        ("pkg.sub.x", ()),
    ),
    (
        "importlib literal package",
        "pkg.sub.mod",
        "import importlib\nimportlib.import_module('..x', 'pkg.sub')",
        ("pkg.x", ()),
    ),
]


@pytest.mark.parametrize(
    "module, source, expected",
    [case[1:] for case in RELATIVE_CASES],
    ids=[case[0] for case in RELATIVE_CASES],
)
def test_relative_import_resolution(
    tmp_path: Path, module: str, source: str, expected: Tuple[object, Tuple[str, ...]]
) -> None:
    python = require_python("3.9")

    analysis = probe_sources(tmp_path, python, {module: source.encode()}).files[0]

    records = [record for record in analysis.imports if record.module != "importlib"]
    assert len(records) == 1
    assert (records[0].module, records[0].names) == expected
