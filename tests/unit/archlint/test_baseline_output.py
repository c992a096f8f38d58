"""Baselines, text and JSON reports, exit codes and probe-output validation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import make_file, make_import  # pants: no-infer-dep

from perfguard.archlint.baseline import (
    Baseline,
    BaselineEntry,
    apply_baseline,
    build_baseline,
    read_baseline,
    render_baseline,
    write_baseline,
)
from perfguard.archlint.config import ArchLintConfig
from perfguard.archlint.model import ClassRecord, ProbeResult
from perfguard.archlint.output import (
    EXIT_BLOCKING,
    EXIT_OK,
    SCHEMA,
    exit_code_for,
    render_json,
    render_text,
)
from perfguard.archlint.rules import ArchLintResult, analyze
from perfguard.errors import InvalidBaseline, InvalidProbeOutput
from perfguard.findings import Cost

CONFIG = ArchLintConfig.from_options(protocol_globs=["**/protocols.py"], class_line_limit=10)


def _result(torch_line: int = 1, class_line: int = 5) -> ArchLintResult:
    files = [
        make_file(
            "src/protocols.py",
            "protocols",
            make_import("torch", torch_line),
            make_import("numpy", torch_line + 1),
        ),
        make_file(
            "src/big.py",
            "big",
            classes=(ClassRecord("Big", "Big", class_line, class_line + 19, 20, 19),),
        ),
    ]
    return analyze(files, CONFIG, module_costs={"torch": Cost(ms=300.0)})


def test_baseline_survives_line_shift() -> None:
    baseline = build_baseline(_result().findings)

    shifted = apply_baseline(_result(torch_line=40, class_line=90).findings, baseline)

    assert shifted.new == ()
    assert len(shifted.matched) == 3
    assert shifted.stale == ()


def test_baseline_new_and_stale() -> None:
    old = build_baseline(_result().findings)
    extra = BaselineEntry("god-object", "src/gone.py", "Gone", "class Gone has 900 lines")
    baseline = Baseline(old.entries[:2] + (extra,))

    result = apply_baseline(_result().findings, baseline)

    assert len(result.matched) == 2
    assert len(result.new) == 1
    assert result.stale == (extra,)


def test_baseline_render_is_sorted_and_stable() -> None:
    findings = _result().findings
    forward = render_baseline(build_baseline(findings))
    backward = render_baseline(build_baseline(tuple(reversed(findings))))

    assert forward == backward
    document = json.loads(forward)
    assert document["schema_version"] == 1
    keys = [(e["rule_id"], e["path"], e["fingerprint"]) for e in document["entries"]]
    assert keys == sorted(keys)


def test_baseline_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    baseline = build_baseline(_result().findings)

    write_baseline(path, baseline)

    assert read_baseline(path) == baseline
    assert os.listdir(tmp_path) == ["baseline.json"]


def test_baseline_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("original\n")

    def fail_replace(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        write_baseline(path, build_baseline(_result().findings))

    assert path.read_text() == "original\n"
    assert os.listdir(tmp_path) == ["baseline.json"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not JSON"),
        ('{"schema_version": 99, "entries": []}', "schema_version is 99"),
        ('{"schema_version": 1, "entries": {}}', "'entries' must be a list"),
        ('{"schema_version": 1, "entries": [{"rule_id": "x"}]}', "entries[0] needs"),
        ("[]", "expected a JSON object"),
    ],
)
def test_corrupt_baseline_left_untouched(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(text)

    with pytest.raises(InvalidBaseline) as raised:
        read_baseline(path)

    assert str(path) in str(raised.value)
    assert message in str(raised.value)
    assert path.read_text() == text


def test_missing_baseline_is_empty(tmp_path: Path) -> None:
    assert read_baseline(tmp_path / "absent.json") == Baseline()


def test_text_report() -> None:
    text = render_text(_result())

    lines = text.splitlines()
    assert lines[0] == "src/big.py:5: god-object [warning] class Big has 20 lines (limit 10)"
    assert lines[1].startswith("    fix: Split Big")
    assert lines[2] == ""
    assert lines[3].startswith("src/protocols.py:1: heavy-import [critical]")
    assert "(startup cost 300.0 ms)" in lines[3]
    assert lines[5].startswith("src/protocols.py:2: heavy-import [critical]")
    assert "(startup cost not measured)" in lines[5]
    assert "3 findings in 2 files (2 critical, 0 error, 1 warning, 0 info)" in text
    assert (
        "Total measured startup penalty: 300.0 ms over 1 module (an upper bound where they "
        "share dependencies); 1 module not measured: numpy." in text
    )


def test_json_report_matches_schema() -> None:
    document: Dict[str, Any] = json.loads(render_json(_result()))

    top_level = set(SCHEMA)
    per_finding = set(SCHEMA["findings"])
    assert set(document) == top_level
    assert all(set(finding) == per_finding for finding in document["findings"])
    assert document["blocking"] is True
    assert document["measured_cost_ms"] == 300.0
    assert document["measured_cost_mb"] is None
    assert document["unmeasured_modules"] == ["numpy"]
    assert document["counts"] == {"critical": 2, "error": 0, "warning": 1, "info": 0}


def test_exit_codes() -> None:
    result = _result()
    warnings_only = [f for f in result.findings if f.rule_id == "god-object"]

    assert exit_code_for(result.findings) == EXIT_BLOCKING
    assert exit_code_for(warnings_only) == EXIT_OK
    assert exit_code_for([]) == EXIT_OK


def _probe_document() -> Dict[str, Any]:
    return {
        "probe_version": 1,
        "python": "3.9.18",
        "files": [
            {
                "path": "a.py",
                "module": "a",
                "lines": 1,
                "error": None,
                "imports": [
                    {
                        "module": "os",
                        "raw": "os",
                        "line": 1,
                        "column": 1,
                        "level": 0,
                        "names": [],
                        "kind": "import",
                        "context": "runtime",
                        "in_try_import_error": False,
                    }
                ],
                "classes": [],
                "runtime_uses_of_typing_names": [],
                "suppressions": [],
                "future_annotations": False,
            }
        ],
    }


def test_probe_document_loads() -> None:
    result = ProbeResult.from_json(_probe_document())

    assert result.files[0].imports[0].module == "os"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(probe_version=2), "probe_version is 2"),
        (lambda d: d.update(files={}), "files must be a list"),
        (lambda d: d["files"][0].pop("lines"), "files[0] is missing 'lines'"),
        (lambda d: d["files"][0]["imports"][0].update(context="later"), "context must be one of"),
        (lambda d: d["files"][0]["imports"][0].update(line=True), "line must be int"),
        (lambda d: d["files"][0].update(error="boom"), "files[0].error must be a JSON object"),
    ],
)
def test_malformed_probe_output(mutate: Any, message: str) -> None:
    document = _probe_document()
    mutate(document)

    with pytest.raises(InvalidProbeOutput) as raised:
        ProbeResult.from_json(document)

    assert message in str(raised.value)
