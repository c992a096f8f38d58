"""Annotations that a library reads when a class is created, such as pydantic model fields."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import pytest
from conftest import make_file, require_python  # pants: no-infer-dep

from perfguard.archlint.config import DEFAULT_INTROSPECTED_CLASSES, ArchLintConfig
from perfguard.archlint.model import TypingNameUse
from perfguard.archlint.probe import ProbeInput, run_probe
from perfguard.archlint.rules import analyze
from perfguard.errors import InvalidConfiguration

FUTURE = "from __future__ import annotations\n"
GUARD = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from heavy import Thing
"""
BY_MODEL = "annotation read by pydantic.BaseModel"
BY_DATACLASS = "annotation read by pydantic.dataclasses.dataclass"

# (case id, prefix before GUARD, code after GUARD, expected `use` labels of `Thing`).
INTROSPECTED_CASES: List[Tuple[str, str, str, List[str]]] = [
    (
        "model field postponed",
        FUTURE,
        "from pydantic import BaseModel\nclass M(BaseModel):\n    x: Thing",
        [BY_MODEL],
    ),
    (
        "model field evaluated",
        "",
        "from pydantic import BaseModel\nclass M(BaseModel):\n    x: Thing",
        [BY_MODEL],
    ),
    (
        "module attribute base",
        FUTURE,
        "import pydantic\nclass M(pydantic.BaseModel):\n    x: Thing",
        [BY_MODEL],
    ),
    (
        "aliased base",
        FUTURE,
        "from pydantic import BaseModel as Model\nclass M(Model):\n    x: Thing",
        [BY_MODEL],
    ),
    (
        "quoted field",
        "",
        "from pydantic import BaseModel\nclass M(BaseModel):\n    x: 'Thing'",
        [BY_MODEL],
    ),
    (
        "quoted generic field",
        "",
        "from pydantic import BaseModel\nclass M(BaseModel):\n    x: 'list[Thing]' = []",
        [BY_MODEL],
    ),
    (
        "decorator call",
        FUTURE,
        "from pydantic.dataclasses import dataclass\n@dataclass(frozen=True)\nclass M:\n"
        "    x: Thing",
        [BY_DATACLASS],
    ),
    (
        "stdlib dataclass",
        FUTURE,
        "from dataclasses import dataclass\n@dataclass\nclass M:\n    x: Thing",
        [],
    ),
    ("plain class postponed", FUTURE, "class M:\n    x: Thing", []),
    (
        "method in model",
        FUTURE,
        "from pydantic import BaseModel\nclass M(BaseModel):\n    def f(self, y: Thing) -> None:\n"
        "        pass",
        [],
    ),
    (
        "field default runs",
        FUTURE,
        "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int = Thing",
        ["class-level expression"],
    ),
]


def _probe(tmp_path: Path, source: str, introspected: Sequence[str]) -> List[TypingNameUse]:
    python = require_python("3.9")
    path = tmp_path / "models.py"
    path.write_text(source)
    result = run_probe(
        python,
        [ProbeInput(path=str(path), module="models", is_package=False)],
        introspected_classes=introspected,
    )
    analysis = result.files[0]
    assert analysis.error is None
    return list(analysis.runtime_uses_of_typing_names)


@pytest.mark.parametrize(
    "prefix, code, expected",
    [case[1:] for case in INTROSPECTED_CASES],
    ids=[case[0] for case in INTROSPECTED_CASES],
)
def test_introspected_annotations(
    tmp_path: Path, prefix: str, code: str, expected: List[str]
) -> None:
    uses = _probe(tmp_path, prefix + GUARD + code + "\n", DEFAULT_INTROSPECTED_CLASSES)

    assert [use.use for use in uses] == expected
    assert all(use.name == "Thing" for use in uses)


def test_unconfigured_model_is_postponed(tmp_path: Path) -> None:
    code = "from pydantic import BaseModel\nclass M(BaseModel):\n    x: Thing\n"

    uses = _probe(tmp_path, FUTURE + GUARD + code, ())

    assert uses == []


def test_quoted_field_location(tmp_path: Path) -> None:
    code = "from pydantic import BaseModel\nclass M(BaseModel):\n    x: 'Thing'\n"

    uses = _probe(tmp_path, GUARD + code, DEFAULT_INTROSPECTED_CLASSES)

    assert [(use.line, use.column) for use in uses] == [(7, 8)]


def test_introspected_finding_fix() -> None:
    use = TypingNameUse(name="Thing", line=8, column=8, use=BY_MODEL)
    analysis = make_file("src/models.py", "models", runtime_uses_of_typing_names=(use,))

    result = analyze([analysis], ArchLintConfig.from_options())

    assert [finding.rule_id for finding in result.findings] == ["guarded-name-at-runtime"]
    assert "pydantic.BaseModel evaluates the annotation" in result.findings[0].fix


def test_introspected_classes_are_validated() -> None:
    with pytest.raises(InvalidConfiguration, match="introspected_classes: 'not a name'"):
        ArchLintConfig.from_options(introspected_classes=["not a name"])
