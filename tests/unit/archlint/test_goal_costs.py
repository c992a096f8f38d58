"""The `arch-lint` goal: import costs measured in a requirements-only virtualenv, and batching."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Tuple

import pytest
from pants.backend.python import register as python_register
from pants.backend.python.target_types import PythonSourceField, PythonSourceTarget
from pants.core import register as core_register
from pants.engine.addresses import Address
from pants.testutil.rule_runner import RuleRunner

from perfguard_pants import register
from perfguard_pants.arch_lint import ArchLint, split_batches
from perfguard_pants.testutil import pex_cli_args

_ENV = {"PATH", "PYENV_ROOT", "HOME"}


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        rules=[*core_register.rules(), *python_register.rules(), *register.rules()],
        target_types=[*core_register.target_types(), *python_register.target_types()],
    )


def _global_args() -> List[str]:
    return [
        *pex_cli_args(),
        "--python-interpreter-constraints=['CPython==3.9.*']",
        "--source-root-patterns=['src']",
    ]


def _run(rule_runner: RuleRunner, *extra: str) -> Dict[str, Any]:
    result = rule_runner.run_goal_rule(
        ArchLint,
        global_args=_global_args(),
        args=[
            "--arch-lint-heavy-modules=['asyncio', 'no_such_module_xyz']",
            "--arch-lint-protocol-globs=['**/protocols.py']",
            "--arch-lint-cost-runs=1",
            "--arch-lint-output-format=json",
            *extra,
            "src/app::",
        ],
        env_inherit=_ENV,
    )
    assert result.exit_code == 1, result.stderr
    document: Dict[str, Any] = json.loads(result.stdout)
    return document


def test_goal_measures_heavy_modules(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/app/BUILD": "python_sources()",
            "src/app/protocols.py": "import asyncio\nimport no_such_module_xyz\n",
        }
    )

    document = _run(rule_runner)

    costs = {f["message"].split("'")[1]: f["cost"] for f in document["findings"]}
    assert costs["asyncio"]["ms"] > 0
    assert costs["asyncio"]["mb"] >= 0
    assert "Python 3.9." in costs["asyncio"]["note"]
    assert costs["no_such_module_xyz"]["ms"] is None
    assert costs["no_such_module_xyz"]["note"].startswith("not measured:")
    assert "No module named 'no_such_module_xyz'" in costs["no_such_module_xyz"]["note"]
    assert document["measured_cost_ms"] == costs["asyncio"]["ms"]
    assert document["unmeasured_modules"] == ["no_such_module_xyz"]


def test_goal_skips_costs_when_disabled(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"src/app/BUILD": "python_sources()", "src/app/protocols.py": "import asyncio\n"}
    )

    document = _run(rule_runner, "--no-arch-lint-measure-costs")

    assert document["findings"][0]["cost"] is None
    assert document["measured_cost_ms"] is None
    assert document["unmeasured_modules"] == ["asyncio"]


def _paths(batches: List[List[Any]]) -> List[Tuple[str, ...]]:
    return [tuple(tgt[PythonSourceField].file_path for tgt in batch) for batch in batches]


def _path(tgt: Any) -> str:
    return str(tgt[PythonSourceField].file_path)


def _file_targets(paths: Iterable[str]) -> List[Any]:
    return [
        PythonSourceTarget(
            {"source": path.split("/")[-1]}, Address("src", relative_file_path=path.split("/")[-1])
        )
        for path in sorted(paths)
    ]


def test_batches_change_locally_on_insert() -> None:
    names = [f"src/mod_{index:04d}.py" for index in range(400)]
    before = _paths(split_batches(_file_targets(names), 16, _path))

    after = _paths(split_batches(_file_targets(names + ["src/mod_0200a.py"]), 16, _path))

    assert sum(len(batch) for batch in before) == 400
    assert max(len(batch) for batch in before) <= 64
    # The new file lands in a run that the size cap cut, so the next batch shifts as well.
    assert len(set(after) - set(before)) == 2
    assert len(set(before) - set(after)) == 2
    assert len(set(before) & set(after)) == len(before) - 2
    assert any("src/mod_0200a.py" in batch for batch in set(after) - set(before))


def test_goal_skips_non_python_dependencies(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/app/BUILD": (
                "python_sources(dependencies=[':data'])\nfiles(name='data', sources=['*.txt'])"
            ),
            "src/app/protocols.py": "import asyncio\nfrom app import impl\n",
            "src/app/impl.py": "X = 1\n",
            "src/app/data.txt": "payload\n",
        }
    )

    document = _run(rule_runner, "--no-arch-lint-measure-costs")

    assert document["files_analyzed"] == 2
    assert [finding["rule_id"] for finding in document["findings"]] == ["heavy-import"]
