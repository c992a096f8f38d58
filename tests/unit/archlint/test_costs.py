"""Import cost measurement: the sandbox probe on real interpreters, its output and the totals."""

from __future__ import annotations

import json
import runpy
import subprocess
from typing import Any, Dict

import pytest
from conftest import edge_map, make_file, make_import, require_python  # pants: no-infer-dep

from perfguard.archlint.config import ArchLintConfig
from perfguard.archlint.costs import (
    COST_SCRIPT,
    find_cost_requests,
    load_cost_output,
    measure_costs,
)
from perfguard.archlint.file_rules import CostTable
from perfguard.archlint.output import render_json, render_text
from perfguard.archlint.rules import analyze
from perfguard.errors import InvalidProbeOutput, ProbeFailed
from perfguard.findings import Cost

CONFIG = ArchLintConfig.from_options(
    heavy_modules=["asyncio", "decimal", "no_such_module_xyz"],
    protocol_globs=["**/protocols.py"],
)
SCRIPT: Dict[str, Any] = runpy.run_path(str(COST_SCRIPT))


@pytest.mark.parametrize("version", ["3.7", "3.9", "3.12"])
def test_measures_stdlib_modules(version: str) -> None:
    python = require_python(version)

    costs = measure_costs(python, ["asyncio", "json"], runs=2)

    assert set(costs) == {"asyncio", "json"}
    asyncio_cost = costs["asyncio"]
    assert asyncio_cost.ms is not None and asyncio_cost.ms > 0
    assert asyncio_cost.mb is not None and asyncio_cost.mb >= 0
    assert f"Python {version}." in asyncio_cost.note
    assert "median of 2 runs" in asyncio_cost.note


def test_missing_module_is_not_measured() -> None:
    python = require_python("3.9")

    costs = measure_costs(python, ["no_such_module_xyz"], runs=1)

    cost = costs["no_such_module_xyz"]
    assert cost.ms is None
    assert cost.mb is None
    assert cost.note.startswith("not measured: importing no_such_module_xyz failed")
    assert "No module named 'no_such_module_xyz'" in cost.note


def test_module_that_raises_is_not_measured(tmp_path: Any) -> None:
    python = require_python("3.9")
    (tmp_path / "broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"modules": ["broken_mod"], "runs": 1}))

    completed = subprocess.run(
        [python, str(COST_SCRIPT), str(spec)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path)},
        check=True,
    )
    cost = load_cost_output(completed.stdout, environment="test")["broken_mod"]

    assert cost.ms is None
    assert "RuntimeError: boom at import" in cost.note


def test_bad_interpreter_raises() -> None:
    with pytest.raises(ProbeFailed, match="Failed to start"):
        measure_costs("/nonexistent/python3", ["json"])


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"modules": "json"}, '"modules" list'),
        ({"modules": [""]}, "non-empty strings"),
        ({"modules": ["json"], "runs": 0}, '"runs" must be a positive integer'),
        ({"modules": ["json"], "runs": True}, '"runs" must be a positive integer'),
        ({"modules": ["json"], "timeout_s": -1}, '"timeout_s" must be a positive number'),
    ],
)
def test_invalid_spec_is_rejected(spec: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SCRIPT["_validate_spec"](spec)


def test_importtime_sums_top_level_after_marker() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 | site",
            SCRIPT["MARKER"],
            "import time:        50 |         50 |     _heapq",
            "import time:       200 |        250 |   heapq",
            "import time:       300 |        550 | collections",
            "import time:        40 |         40 | collections.abc",
            "Traceback-looking noise | not | a line",
        ]
    )

    assert SCRIPT["sum_top_level_importtime"](stderr) == 590


@pytest.mark.parametrize(
    "stdout, message",
    [
        ("not json", "not JSON"),
        ('{"cost_probe_version": 99, "modules": []}', "cost_probe_version 1"),
        ('{"cost_probe_version": 1, "modules": {}}', "must be a list"),
        ('{"cost_probe_version": 1, "modules": [{"ms": 1}]}', "needs a `module` string"),
        (
            '{"cost_probe_version": 1, "modules": [{"module": "m", "ms": "fast", "mb": 1}]}',
            "m.ms must be a number",
        ),
    ],
)
def test_invalid_output_is_rejected(stdout: str, message: str) -> None:
    with pytest.raises(InvalidProbeOutput, match=message):
        load_cost_output(stdout, environment="test")


def test_cost_requests_name_the_importing_file() -> None:
    files = [
        make_file(
            "src/protocols.py",
            "app.protocols",
            make_import("decimal", 3),
            make_import("app.impl", 4),
        ),
        make_file("src/app/impl.py", "app.impl", make_import("asyncio", 7)),
    ]
    edges = edge_map(("src/protocols.py", "src/app/impl.py"))

    requests = find_cost_requests(analyze(files, CONFIG, edges=edges))

    by_module = {request.module: request.importer_paths for request in requests}
    assert by_module == {"asyncio": ("src/app/impl.py",), "decimal": ("src/protocols.py",)}


def test_measured_costs_reach_findings_and_totals() -> None:
    python = require_python("3.9")
    files = [
        make_file(
            "src/protocols.py",
            "app.protocols",
            make_import("decimal", 3),
            make_import("asyncio", 4),
            make_import("no_such_module_xyz", 5),
        ),
    ]
    modules = [request.module for request in find_cost_requests(analyze(files, CONFIG))]

    costs = measure_costs(python, modules, runs=1)
    result = analyze(files, CONFIG, module_costs=costs)
    document = json.loads(render_json(result))
    text = render_text(result)

    measured = [f for f in result.findings if f.cost is not None and f.cost.ms is not None]
    assert len(measured) == 2
    expected_ms = round(sum(f.cost.ms for f in measured if f.cost and f.cost.ms), 3)
    assert document["measured_cost_ms"] == expected_ms
    assert document["measured_cost_mb"] is not None
    assert document["unmeasured_modules"] == ["no_such_module_xyz"]
    assert "over 2 modules" in text
    assert "1 module not measured: no_such_module_xyz" in text
    assert "startup cost not measured: importing no_such_module_xyz failed" in text


def test_totals_count_each_module_once() -> None:
    files = [
        make_file("src/a/protocols.py", "a.protocols", make_import("decimal", 1)),
        make_file("src/b/protocols.py", "b.protocols", make_import("decimal", 1)),
    ]

    result = analyze(files, CONFIG, module_costs={"decimal": Cost(ms=10.0, mb=2.0)})
    document = json.loads(render_json(result))

    assert len(result.findings) == 2
    assert document["measured_cost_ms"] == 10.0
    assert document["measured_cost_mb"] == 2.0


@pytest.mark.parametrize("measured_path", ["src/a/protocols.py", "src/b/protocols.py"])
def test_totals_prefer_measured_figures(measured_path: str) -> None:
    files = [
        make_file("src/a/protocols.py", "a.protocols", make_import("decimal", 1)),
        make_file("src/b/protocols.py", "b.protocols", make_import("decimal", 1)),
    ]
    environments = {"src/a/protocols.py": "env-a", "src/b/protocols.py": "env-b"}
    table = CostTable.create(
        [
            (environment, "decimal", Cost(ms=5.0, mb=1.0, note="median"))
            if path == measured_path
            else (environment, "decimal", Cost(note="not measured: x"))
            for path, environment in environments.items()
        ],
        environments,
    )

    document = json.loads(render_json(analyze(files, CONFIG, module_costs=table)))

    costs = {finding["path"]: finding["cost"]["ms"] for finding in document["findings"]}
    assert costs[measured_path] == 5.0
    assert [ms for path, ms in costs.items() if path != measured_path] == [None]
    assert document["measured_cost_ms"] == 5.0
    assert document["unmeasured_modules"] == []
