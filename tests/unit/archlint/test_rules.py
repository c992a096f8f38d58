"""Per-file rules, transitive heavy imports, suppressions and allowed exceptions."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import pytest
from conftest import make_file, make_import  # pants: no-infer-dep

from perfguard.archlint.config import ArchLintConfig
from perfguard.archlint.model import ClassRecord, ProbeError, Suppression, TypingNameUse
from perfguard.archlint.rules import analyze
from perfguard.findings import Cost, Finding, Severity

PROTOCOL = ArchLintConfig.from_options(protocol_globs=["**/protocols.py"])


def _rule_ids(findings: Sequence[Finding]) -> List[str]:
    return [finding.rule_id for finding in findings]


@pytest.mark.parametrize(
    "module, kind, names, context, in_try, level, expected",
    [
        ("numpy", "import", (), "runtime", False, 0, "numpy"),
        ("sqlalchemy.orm", "import", (), "runtime", False, 0, "sqlalchemy.orm"),
        ("sqlalchemy", "from", ("orm",), "runtime", False, 0, "sqlalchemy"),
        ("torch", "import", (), "runtime", True, 0, "torch"),
        ("numpyro", "import", (), "runtime", False, 0, None),
        ("pandas", "import", (), "typing", False, 0, None),
        ("pandas", "import", (), "deferred", False, 0, None),
        ("myapp.numpy", "import", (), "runtime", False, 0, None),
        ("numpy", "from", ("x",), "runtime", False, 1, None),
        ("asyncpg", "importlib", (), "runtime", False, 0, "asyncpg"),
    ],
)
def test_heavy_import_table(
    module: str,
    kind: str,
    names: Tuple[str, ...],
    context: str,
    in_try: bool,
    level: int,
    expected: Optional[str],
) -> None:
    record = make_import(
        module, 3, kind=kind, names=names, context=context, in_try=in_try, level=level
    )
    files = [make_file("src/myapp/protocols.py", "myapp.protocols", record)]

    result = analyze(files, PROTOCOL)

    heavy = [f for f in result.findings if f.rule_id == "heavy-import"]
    if expected is None:
        assert heavy == []
    else:
        assert len(heavy) == 1
        assert heavy[0].severity is Severity.critical
        assert f"'{expected}'" in heavy[0].message
        assert heavy[0].location.line == 3


def test_heavy_import_outside_protocol_files() -> None:
    files = [make_file("src/myapp/service.py", "myapp.service", make_import("torch", 1))]

    result = analyze(files, PROTOCOL)

    assert result.findings == ()


def test_first_party_module_named_like_heavy() -> None:
    files = [
        make_file("src/protocols.py", "protocols", make_import("numpy", 1)),
        make_file("src/numpy/__init__.py", "numpy"),
    ]

    result = analyze(files, PROTOCOL)

    assert "heavy-import" not in _rule_ids(result.findings)


def test_configured_first_party_name() -> None:
    config = ArchLintConfig.from_options(
        protocol_globs=["**/protocols.py"], first_party_modules=["torch"]
    )
    files = [make_file("src/protocols.py", "protocols", make_import("torch", 1))]

    result = analyze(files, config)

    assert result.findings == ()


def test_heavy_import_cost() -> None:
    files = [make_file("src/protocols.py", "protocols", make_import("torch.nn", 1))]

    measured = analyze(files, PROTOCOL, module_costs={"torch": Cost(ms=812.5)})
    unmeasured = analyze(files, PROTOCOL)

    assert measured.findings[0].cost == Cost(ms=812.5)
    assert "812.5 ms" in measured.findings[0].message
    assert unmeasured.findings[0].cost is None
    assert "not measured" in unmeasured.findings[0].message


def test_transitive_heavy_import_chain() -> None:
    files = [
        make_file("src/app/protocols.py", "app.protocols", make_import("app.models", 4)),
        make_file("src/app/models.py", "app.models", make_import("app.db", 7)),
        make_file(
            "src/app/db.py",
            "app.db",
            make_import("sqlalchemy.orm", 2),
            make_import("pandas", 3, context="deferred"),
        ),
    ]

    result = analyze(files, PROTOCOL)

    (finding,) = result.findings
    assert finding.rule_id == "transitive-heavy-import"
    assert finding.severity is Severity.error
    assert finding.location.path == "src/app/protocols.py"
    assert finding.location.line == 4
    assert [(loc.path, loc.line) for loc in finding.related] == [
        ("src/app/protocols.py", 4),
        ("src/app/models.py", 7),
        ("src/app/db.py", 2),
    ]
    assert "src/app/protocols.py:4 -> src/app/models.py" in finding.message
    assert "src/app/db.py:2 imports sqlalchemy.orm" in finding.message


def test_transitive_skips_deferred_edges() -> None:
    files = [
        make_file(
            "src/app/protocols.py", "app.protocols", make_import("app.db", 4, context="deferred")
        ),
        make_file("src/app/db.py", "app.db", make_import("torch", 2)),
    ]

    result = analyze(files, PROTOCOL)

    assert result.findings == ()


def test_guarded_name_finding() -> None:
    use = TypingNameUse(name="Thing", line=8, column=9, use="annotation")
    files = [make_file("src/a.py", "a", runtime_uses_of_typing_names=(use,))]

    result = analyze(files, ArchLintConfig())

    (finding,) = result.findings
    assert finding.rule_id == "guarded-name-at-runtime"
    assert finding.severity is Severity.error
    assert (finding.location.line, finding.location.column) == (8, 9)
    assert "from __future__ import annotations" in finding.fix


def test_god_object_limit() -> None:
    classes = (
        ClassRecord("Big", "Big", 1, 501, 501, 499),
        ClassRecord("Fits", "Fits", 600, 1099, 500, 499),
    )
    files = [make_file("src/a.py", "a", classes=classes)]

    result = analyze(files, ArchLintConfig())

    (finding,) = result.findings
    assert finding.rule_id == "god-object"
    assert finding.severity is Severity.warning
    assert finding.message == "class Big has 501 lines (limit 500)"
    assert not result.blocking


def test_parse_error_blocks() -> None:
    error = ProbeError("SyntaxError", "invalid syntax", 3, 7)
    files = [make_file("src/a.py", "a", error=error)]

    result = analyze(files, ArchLintConfig())

    (finding,) = result.findings
    assert finding.rule_id == "parse-error"
    assert finding.location.line == 3
    assert "SyntaxError at line 3: invalid syntax" in finding.message
    assert result.blocking


def test_valid_suppression_moves_finding() -> None:
    suppression = Suppression(line=1, rules=("heavy-import",), reason="only used by the CLI")
    files = [
        make_file(
            "src/protocols.py", "protocols", make_import("torch", 1), suppressions=(suppression,)
        )
    ]

    result = analyze(files, PROTOCOL)

    assert result.findings == ()
    assert len(result.suppressed) == 1
    assert "only used by the CLI" in result.suppressed[0].reason


@pytest.mark.parametrize(
    "rules, reason, problem",
    [
        (("heavy-import",), "", "gives no reason"),
        (("no-such-rule",), "because", "names unknown rule 'no-such-rule'"),
        ((), "because", "names no rule"),
    ],
)
def test_invalid_suppression(rules: Tuple[str, ...], reason: str, problem: str) -> None:
    suppression = Suppression(line=1, rules=rules, reason=reason)
    files = [
        make_file(
            "src/protocols.py", "protocols", make_import("torch", 1), suppressions=(suppression,)
        )
    ]

    result = analyze(files, PROTOCOL)

    assert sorted(_rule_ids(result.findings)) == ["heavy-import", "invalid-suppression"]
    invalid = [f for f in result.findings if f.rule_id == "invalid-suppression"][0]
    assert problem in invalid.message
    assert invalid.severity is Severity.warning


def test_suppression_on_cycle_edge() -> None:
    suppression = Suppression(line=5, rules=("import-cycle",), reason="registry pattern")
    files = [
        make_file("src/a.py", "a", make_import("b", 3)),
        make_file("src/b.py", "b", make_import("a", 5), suppressions=(suppression,)),
    ]

    result = analyze(files, ArchLintConfig())

    assert result.findings == ()
    assert len(result.suppressed) == 1


@pytest.mark.parametrize(
    "entry, suppressed",
    [
        ("heavy-import:src/legacy/**", True),
        ("heavy-import:legacy", True),
        ("heavy-import:torch", True),
        ("heavy-import:src/other/*.py", False),
        ("god-object:src/legacy/**", False),
    ],
)
def test_allowed_exceptions(entry: str, suppressed: bool) -> None:
    config = ArchLintConfig.from_options(
        protocol_globs=["**/protocols.py"], allowed_exceptions=[entry]
    )
    files = [make_file("src/legacy/protocols.py", "legacy.protocols", make_import("torch", 1))]

    result = analyze(files, config)

    assert (len(result.suppressed) == 1) is suppressed
    assert (len(result.findings) == 0) is suppressed


def test_severity_override() -> None:
    config = ArchLintConfig.from_options(severities={"god-object": "error"}, class_line_limit=10)
    classes = (ClassRecord("Big", "Big", 1, 20, 20, 19),)

    result = analyze([make_file("src/a.py", "a", classes=classes)], config)

    assert result.findings[0].severity is Severity.error
    assert result.blocking


def test_focus_paths_limit_file_findings() -> None:
    files = [
        make_file("src/protocols.py", "protocols", make_import("torch", 1)),
        make_file("src/other/protocols.py", "other.protocols", make_import("torch", 1)),
    ]

    result = analyze(files, PROTOCOL, focus_paths=["src/protocols.py"])

    assert [f.location.path for f in result.findings] == ["src/protocols.py"]
