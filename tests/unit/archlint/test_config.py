"""Configuration validation and glob matching."""

from __future__ import annotations

import pytest

from perfguard.archlint.config import ArchLintConfig, match_glob
from perfguard.errors import InvalidConfiguration
from perfguard.findings import Severity


@pytest.mark.parametrize(
    "glob, path, expected",
    [
        ("**/protocols.py", "protocols.py", True),
        ("**/protocols.py", "src/app/protocols.py", True),
        ("**/protocols.py", "src/app/my_protocols.py", False),
        ("**/interfaces/*.py", "src/app/interfaces/user.py", True),
        ("**/interfaces/*.py", "src/app/interfaces/sub/user.py", False),
        ("src/*/api.py", "src/app/api.py", True),
        ("src/*/api.py", "src/app/v1/api.py", False),
        ("src/**", "src/app/v1/api.py", True),
        ("src/app/api?.py", "src/app/api2.py", True),
        ("src/app/api[!0-9].py", "src/app/api2.py", False),
    ],
)
def test_match_glob(glob: str, path: str, expected: bool) -> None:
    assert match_glob(glob, path) is expected


def test_defaults() -> None:
    config = ArchLintConfig.from_options()

    assert config.heavy_modules == ("asyncpg", "numpy", "pandas", "sqlalchemy", "torch")
    assert config.protocol_globs == ()
    assert config.class_line_limit == 500
    assert config.severity_for("heavy-import") is Severity.critical
    assert config.severity_for("god-object") is Severity.warning


def test_all_problems_reported_together() -> None:
    with pytest.raises(InvalidConfiguration) as raised:
        ArchLintConfig.from_options(
            heavy_modules=["torch", "not a module"],
            protocol_globs=["", "/abs/protocols.py"],
            class_line_limit=0,
            severities={"god-object": "fatal", "no-such-rule": "error"},
            allowed_exceptions=["heavy-import", "bogus-rule:src/*.py"],
        )

    problems = raised.value.problems
    assert len(problems) == 8
    text = str(raised.value)
    assert "'not a module' is not a dotted module name" in text
    assert "class_line_limit: 0 is invalid" in text
    assert "Invalid severity 'fatal'" in text
    assert "unknown rule 'no-such-rule'" in text
    assert "names unknown rule 'bogus-rule'" in text
    assert "not build-root-relative" in text


def test_string_instead_of_list() -> None:
    with pytest.raises(InvalidConfiguration, match="got the string 'torch'"):
        ArchLintConfig.from_options(heavy_modules="torch")
