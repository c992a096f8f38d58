"""Probe output beyond import contexts: guarded names, suppressions, classes and bad input."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import List, Tuple

import pytest
from conftest import probe_one, probe_sources, require_python  # pants: no-infer-dep

GUARD = """
from typing import TYPE_CHECKING, cast
if TYPE_CHECKING:
    from heavy import Thing
"""

# (case id, code after GUARD, expected `use` labels of the runtime uses of `Thing`).
RUNTIME_USE_CASES: List[Tuple[str, str, List[str]]] = [
    ("base class", "class A(Thing):\n    pass", ["base class"]),
    ("decorator", "@Thing\ndef f():\n    pass", ["decorator"]),
    ("isinstance", "ok = isinstance(1, Thing)", ["isinstance"]),
    ("issubclass", "ok = issubclass(int, (Thing, str))", ["issubclass"]),
    ("module expression", "x = Thing()", ["module-level expression"]),
    ("class expression", "class A:\n    x = Thing", ["class-level expression"]),
    ("default value", "def f(x=Thing):\n    pass", ["default"]),
    ("signature annotation", "def f(x: Thing) -> None:\n    pass", ["annotation"]),
    ("return annotation", "def f() -> Thing:\n    pass", ["annotation"]),
    ("variable annotation", "x: Thing = 1", ["annotation"]),
    ("class variable annotation", "class A:\n    x: Thing", ["annotation"]),
    ("quoted annotation", "def f(x: 'Thing') -> 'Thing':\n    pass", []),
    ("function body", "def f():\n    return Thing()", []),
    ("local annotation", "def f():\n    x: Thing = 1", []),
    ("lambda body", "f = lambda: Thing", []),
    ("cast unquoted", "y = cast(Thing, 1)", ["cast"]),
    ("cast quoted", "y = cast('Thing', 1)", []),
    ("guarded use", "if TYPE_CHECKING:\n    y = Thing", []),
    (
        "runtime fallback",
        "if not TYPE_CHECKING:\n    Thing = object\nclass A(Thing):\n    pass",
        [],
    ),
]


@pytest.mark.parametrize(
    "code, expected",
    [case[1:] for case in RUNTIME_USE_CASES],
    ids=[case[0] for case in RUNTIME_USE_CASES],
)
def test_runtime_uses_of_typing_names(tmp_path: Path, code: str, expected: List[str]) -> None:
    python = require_python("3.9")

    analysis = probe_one(tmp_path, python, GUARD + code + "\n")

    assert analysis.error is None
    assert [use.use for use in analysis.runtime_uses_of_typing_names] == expected
    assert all(use.name == "Thing" for use in analysis.runtime_uses_of_typing_names)


def test_future_annotations_skip_annotations(tmp_path: Path) -> None:
    python = require_python("3.9")
    source = (
        "from __future__ import annotations\n"
        + GUARD
        + dedent(
            """
        x: Thing = 1
        def f(y: Thing) -> Thing:
            pass
        class A(Thing):
            pass
        """
        )
    )

    analysis = probe_one(tmp_path, python, source)

    assert analysis.future_annotations is True
    assert [use.use for use in analysis.runtime_uses_of_typing_names] == ["base class"]


def test_runtime_use_line_and_column(tmp_path: Path) -> None:
    python = require_python("3.9")

    analysis = probe_one(tmp_path, python, GUARD + "class A(Base, Thing):\n    pass\n")

    use = analysis.runtime_uses_of_typing_names[0]
    assert (use.line, use.column) == (5, 15)


SUPPRESSION_CASES = [
    (
        "with reason",
        "import a  # perfguard: ignore[heavy-import] loaded lazily by the CLI",
        [(1, ("heavy-import",), "loaded lazily by the CLI")],
    ),
    ("no reason", "import a  # perfguard: ignore[heavy-import]", [(1, ("heavy-import",), "")]),
    (
        "two rules",
        "import a  # perfguard: ignore[heavy-import, import-cycle] legacy",
        [(1, ("heavy-import", "import-cycle"), "legacy")],
    ),
    ("no rule list", "import a  # perfguard: ignore because", [(1, (), "because")]),
    ("inside a string", "text = '# perfguard: ignore[heavy-import] nope'", []),
    (
        "second line",
        "import a\nimport b  # perfguard: ignore[god-object] ok",
        [(2, ("god-object",), "ok")],
    ),
]


@pytest.mark.parametrize(
    "source, expected",
    [case[1:] for case in SUPPRESSION_CASES],
    ids=[case[0] for case in SUPPRESSION_CASES],
)
def test_suppression_comments(
    tmp_path: Path, source: str, expected: List[Tuple[int, Tuple[str, ...], str]]
) -> None:
    python = require_python("3.9")

    analysis = probe_one(tmp_path, python, source + "\n")

    found = [(s.line, s.rules, s.reason) for s in analysis.suppressions]
    assert found == expected


CLASS_SOURCE = '''\
import functools


@functools.total_ordering
@dataclass
class Outer:
    """Docstring line one.

    Docstring line three.
    """

    class Inner:
        x = 1
        y = 2

    def method(self):
        class Local:
            pass
        return Local
'''


@pytest.mark.parametrize("version", ["3.7", "3.9", "3.12"])
def test_class_line_counting(tmp_path: Path, version: str) -> None:
    python = require_python(version)

    analysis = probe_one(tmp_path, python, CLASS_SOURCE)

    by_name = {record.qualname: record for record in analysis.classes}
    assert sorted(by_name) == ["Outer", "Outer.Inner", "Outer.method.<locals>.Local"]
    outer = by_name["Outer"]
    assert (outer.line, outer.end_line, outer.lines) == (4, 19, 16)
    assert outer.body_lines == 13
    inner = by_name["Outer.Inner"]
    assert (inner.line, inner.end_line, inner.lines) == (12, 14, 3)
    assert by_name["Outer.method.<locals>.Local"].lines == 2


def test_physical_line_count(tmp_path: Path) -> None:
    python = require_python("3.9")

    analysis = probe_one(tmp_path, python, "a = 1\n\n\nb = 2\n")

    assert analysis.lines == 4


NEW_SYNTAX = """\
type Alias = int
def first[T](items: list[T]) -> T:
    import target_mod
    return items[0]
"""


def test_new_syntax_parses_under_312(tmp_path: Path) -> None:
    python = require_python("3.12")

    analysis = probe_one(tmp_path, python, NEW_SYNTAX)

    assert analysis.error is None
    assert [(r.module, r.context) for r in analysis.imports] == [("target_mod", "deferred")]


def test_new_syntax_is_error_under_39(tmp_path: Path) -> None:
    python = require_python("3.9")

    analysis = probe_one(tmp_path, python, NEW_SYNTAX)

    assert analysis.error is not None
    assert analysis.error.type == "SyntaxError"
    assert analysis.error.line == 1
    assert analysis.imports == ()


BAD_INPUT_CASES = [
    ("syntax error", b"import os\ndef broken(:\n", "SyntaxError", 2),
    ("undecodable bytes", b"x = '\xff\xfe'\n", "SyntaxError", None),
    ("null byte", b"x = 1\x00\n", None, None),
    ("deep parentheses", b"x = " + b"(" * 5000 + b"1" + b")" * 5000 + b"\n", None, None),
    ("deep unary", b"x = " + b"-" * 100000 + b"1\n", None, None),
    ("unknown coding", b"# -*- coding: no-such-codec -*-\nx = 1\n", "SyntaxError", None),
]


@pytest.mark.parametrize("version", ["3.9", "3.12"])
@pytest.mark.parametrize(
    "data, error_type, line",
    [case[1:] for case in BAD_INPUT_CASES],
    ids=[case[0] for case in BAD_INPUT_CASES],
)
def test_bad_input_is_error_entry(
    tmp_path: Path, version: str, data: bytes, error_type: str, line: int
) -> None:
    python = require_python(version)
    sources = {"pkg.bad": data, "pkg.good": b"import json\n"}

    result = probe_sources(tmp_path, python, sources)

    bad, good = result.files
    assert bad.error is not None
    if error_type is not None:
        assert bad.error.type == error_type
    if line is not None:
        assert bad.error.line == line
    assert bad.imports == ()
    assert good.error is None
    assert [record.module for record in good.imports] == ["json"]


@pytest.mark.parametrize("version", ["3.7", "3.9", "3.12"])
def test_coding_cookie_latin1(tmp_path: Path, version: str) -> None:
    python = require_python(version)
    data = (
        "# -*- coding: latin-1 -*-\n"
        "name = 'caf\u00e9'\n"
        "import json  # perfguard: ignore[heavy-import] r\u00e9sum\u00e9\n"
    )

    analysis = probe_sources(tmp_path, python, {"pkg.latin": data.encode("latin-1")}).files[0]

    assert analysis.error is None
    assert [record.module for record in analysis.imports] == ["json"]
    assert analysis.suppressions[0].reason == "r\u00e9sum\u00e9"


def test_utf8_bom(tmp_path: Path) -> None:
    python = require_python("3.9")

    analysis = probe_sources(tmp_path, python, {"pkg.bom": b"\xef\xbb\xbfimport json\n"}).files[0]

    assert analysis.error is None
    assert [record.module for record in analysis.imports] == ["json"]


def test_huge_file(tmp_path: Path) -> None:
    python = require_python("3.9")
    body = "".join(f"import mod_{i}\nvalue_{i} = {i}\n" for i in range(50000))

    analysis = probe_one(tmp_path, python, body)

    assert analysis.error is None
    assert analysis.lines == 100000
    assert len(analysis.imports) == 50000


def test_long_binary_chain_parses_under_39(tmp_path: Path) -> None:
    python = require_python("3.9")
    source = "import json\nx = " + "1 + " * 100000 + "1\n"

    analysis = probe_one(tmp_path, python, source)

    assert analysis.error is None
    assert [record.module for record in analysis.imports] == ["json"]


def test_missing_file_is_error_entry(tmp_path: Path) -> None:
    from perfguard.archlint.probe import ProbeInput, run_probe

    python = require_python("3.9")
    missing = ProbeInput(path=str(tmp_path / "absent.py"), module="absent", is_package=False)

    analysis = run_probe(python, [missing]).files[0]

    assert analysis.error is not None
    assert analysis.error.type == "FileNotFoundError"
