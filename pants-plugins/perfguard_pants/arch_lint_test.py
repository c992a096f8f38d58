"""RuleRunner tests of the `arch-lint` goal on small in-memory repositories."""

from __future__ import annotations

from typing import List, Mapping

import pytest
from pants.testutil.rule_runner import GoalRuleResult, RuleRunner

from perfguard_pants.arch_lint import ArchLint
from perfguard_pants.testutil import ENV_INHERIT, new_rule_runner, pex_cli_args, pip_workaround_env

PROTOCOL_GLOB = "--arch-lint-protocol-globs=['**/protocols.py']"


def _global_args() -> List[str]:
    return [
        *pex_cli_args(),
        "--python-infer-use-rust-parser",
        "--source-root-patterns=['/src']",
    ]


@pytest.fixture
def rule_runner() -> RuleRunner:
    return new_rule_runner()


def _run_arch_lint(rule_runner: RuleRunner, files: Mapping[str, str], *args: str) -> GoalRuleResult:
    rule_runner.write_files(files)
    return rule_runner.run_goal_rule(
        ArchLint,
        global_args=_global_args(),
        args=list(args),
        env=pip_workaround_env(),
        env_inherit=ENV_INHERIT,
    )


def test_heavy_import_glob(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources()",
        "src/app/protocols.py": "import numpy\n",
        "src/app/models.py": "import numpy\n",
    }

    result = _run_arch_lint(rule_runner, files, PROTOCOL_GLOB, "src/app::")

    assert result.exit_code == 1
    assert (
        "src/app/protocols.py:1: heavy-import [critical] protocol file imports heavy module "
        "'numpy' at import time"
    ) in result.stdout
    assert "src/app/models.py" not in result.stdout
    assert "arch-lint: 1 findings in 2 files" in result.stdout


def test_heavy_import_field(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources(overrides={'api.py': {'arch_lint_protocol': True}})",
        "src/app/api.py": "from sqlalchemy.orm import Session\n",
        "src/app/impl.py": "import torch\n",
    }

    result = _run_arch_lint(rule_runner, files, "src/app::")

    assert result.exit_code == 1
    assert "src/app/api.py:1: heavy-import [critical]" in result.stdout
    assert "'sqlalchemy.orm'" in result.stdout
    assert "src/app/impl.py" not in result.stdout


def test_type_checking_guard(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources()",
        "src/app/protocols.py": (
            "from __future__ import annotations\n"
            "from typing import TYPE_CHECKING, Protocol\n"
            "if TYPE_CHECKING:\n"
            "    import numpy\n"
            "class Model(Protocol):\n"
            "    def predict(self, data: numpy.ndarray) -> numpy.ndarray: ...\n"
        ),
    }

    result = _run_arch_lint(rule_runner, files, PROTOCOL_GLOB, "src/app::")

    assert result.exit_code == 0
    assert "arch-lint: 0 findings in 1 files" in result.stdout


def test_parse_error(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources()",
        "src/app/broken.py": "def broken(:\n    pass\n",
        "src/app/fine.py": "VALUE = 1\n",
    }

    result = _run_arch_lint(rule_runner, files, "src/app::")

    assert result.exit_code == 1
    assert "src/app/broken.py:1" in result.stdout
    assert "parse-error [error] cannot analyze the file: SyntaxError" in result.stdout
    assert "0 findings" not in result.stdout


def test_import_cycle(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources()",
        "src/app/a.py": "from app import b\n",
        "src/app/b.py": "from app import a\n",
        "src/app/c.py": "from app import a\n",
    }

    result = _run_arch_lint(rule_runner, files, "src/app::")

    assert result.exit_code == 1
    assert (
        "import-cycle [critical] import-time import cycle: "
        "src/app/a.py -> src/app/b.py -> src/app/a.py"
    ) in result.stdout
    assert "src/app/c.py" not in result.stdout


def test_skip_field(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources()",
        "src/app/protocols.py": "import pandas\n",
        "src/app/legacy/BUILD": "python_sources(skip_arch_lint=True)",
        "src/app/legacy/protocols.py": "import pandas\n",
    }

    result = _run_arch_lint(rule_runner, files, PROTOCOL_GLOB, "src/app::")

    assert result.exit_code == 1
    assert "src/app/protocols.py:1: heavy-import" in result.stdout
    assert "src/app/legacy/protocols.py" not in result.stdout


def test_skip_field_all(rule_runner: RuleRunner) -> None:
    files = {
        "src/app/BUILD": "python_sources(skip_arch_lint=True)",
        "src/app/protocols.py": "import pandas\n",
    }

    result = _run_arch_lint(rule_runner, files, PROTOCOL_GLOB, "src/app::")

    assert result.exit_code == 0
    assert "nothing to check" in result.stderr
    assert "heavy-import" not in result.stdout


def test_invalid_severity(rule_runner: RuleRunner) -> None:
    files = {"src/app/BUILD": "python_sources()", "src/app/a.py": "VALUE = 1\n"}

    result = _run_arch_lint(
        rule_runner, files, "--arch-lint-severities={'god-object': 'loud'}", "src/app::"
    )

    assert result.exit_code == 2
    assert "'loud'" in result.stderr
    assert "god-object" in result.stderr
    assert result.stdout == ""


def test_baseline_flow(rule_runner: RuleRunner) -> None:
    files = {"src/app/BUILD": "python_sources()", "src/app/protocols.py": "import torch\n"}
    baseline_args = (PROTOCOL_GLOB, "--arch-lint-baseline=arch-lint-baseline.json", "src/app::")

    update = _run_arch_lint(rule_runner, files, "--arch-lint-update-baseline", *baseline_args)
    check = _run_arch_lint(rule_runner, files, *baseline_args)

    assert update.exit_code == 0
    assert "wrote 1 finding to arch-lint-baseline.json" in update.stderr
    assert check.exit_code == 0
    assert "Baseline: 1 accepted, 0 stale entries." in check.stdout
    assert "src/app/protocols.py:1: heavy-import" not in check.stdout


def test_update_baseline_without_path(rule_runner: RuleRunner) -> None:
    files = {"src/app/BUILD": "python_sources()", "src/app/a.py": "VALUE = 1\n"}

    result = _run_arch_lint(rule_runner, files, "--arch-lint-update-baseline", "src/app::")

    assert result.exit_code == 2
    assert "`[arch-lint].baseline`" in result.stderr
