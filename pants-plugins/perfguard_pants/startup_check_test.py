"""RuleRunner tests of the `startup-check` goal on two tiny `pex_binary` targets."""

from __future__ import annotations

import os
from typing import List, Optional

import pytest
from pants.core.util_rules.system_binaries import SEARCH_PATHS
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import GoalRuleResult, RuleRunner

from perfguard_pants.startup_check import StartupCheck
from perfguard_pants.testutil import ENV_INHERIT, new_rule_runner, pex_cli_args, pip_workaround_env

# Budgets far above any real figure, so that only the prohibited module can fail a binary.
_LOOSE_BUDGETS = (
    "--startup-check-budget-ms=600000",
    "--startup-check-import-budget-ms=600000",
    "--startup-check-memory-budget-mb=100000",
)


def _global_args() -> List[str]:
    return [
        *pex_cli_args(),
        "--python-infer-use-rust-parser",
        "--python-interpreter-constraints=['CPython==3.9.*']",
        "--source-root-patterns=['/src']",
    ]


@pytest.fixture
def rule_runner() -> RuleRunner:
    return new_rule_runner()


FILES = {
    "src/app/BUILD": (
        "python_sources()\n"
        "pex_binary(name='plain', entry_point='plain.py')\n"
        "pex_binary(name='store', entry_point='store.py')\n"
    ),
    "src/app/plain.py": "import json\nprint(json.dumps({'ok': 1}))\n",
    "src/app/store.py": "import sqlite3\nprint(sqlite3.sqlite_version)\n",
}


def _run_startup_check(
    rule_runner: RuleRunner, *args: str, counting: Optional[str] = "never"
) -> GoalRuleResult:
    """Run the goal. `counting` sets `count_instructions`, and None leaves its default."""
    rule_runner.write_files(FILES)
    counting_args = [] if counting is None else [f"--startup-check-count-instructions={counting}"]
    return rule_runner.run_goal_rule(
        StartupCheck,
        global_args=_global_args(),
        args=[
            *_LOOSE_BUDGETS,
            "--startup-check-warmup=1",
            "--startup-check-min-runs=3",
            "--startup-check-max-runs=3",
            *counting_args,
            *args,
        ],
        env=pip_workaround_env(),
        env_inherit=ENV_INHERIT,
    )


def test_prohibited_module(rule_runner: RuleRunner) -> None:
    result = _run_startup_check(
        rule_runner, "--startup-check-prohibited-modules=['sqlite3']", "src/app::"
    )

    assert result.exit_code == 1
    assert "src/app:plain: startup " in result.stdout
    assert "3 runs" in result.stdout
    assert " modules" in result.stdout
    assert "src/app:plain: startup check passed" in result.stdout
    assert (
        "src/app:store: prohibited-module [critical] startup imports prohibited package sqlite3"
    ) in result.stdout
    assert "src/app:store: startup check FAILED" in result.stdout
    assert "2 binaries checked, 1 failed." in result.stderr


def test_prohibited_default(rule_runner: RuleRunner) -> None:
    # `[startup-check].prohibited_modules` is documented to default to `[arch-lint].heavy_modules`.
    result = _run_startup_check(
        rule_runner, "--arch-lint-heavy-modules=['sqlite3']", "src/app:store"
    )

    assert result.exit_code == 1
    assert "prohibited package sqlite3" in result.stdout


def test_skip_field(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"src/skipped/BUILD": "pex_binary(entry_point='main.py', skip_startup_check=True)"}
    )

    result = _run_startup_check(rule_runner, "src/skipped:skipped")

    assert result.exit_code == 0
    assert "nothing to measure" in result.stderr
    assert result.stdout == ""


def test_update_baseline_without_dir(rule_runner: RuleRunner) -> None:
    result = _run_startup_check(rule_runner, "--startup-check-update-baseline", "src/app:plain")

    assert result.exit_code == 2
    assert "`[startup-check].baseline_dir`" in result.stderr


def test_invalid_budget_field(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"src/bad/BUILD": "pex_binary(entry_point='main.py', startup_budget_ms=-5.0)"}
    )

    with pytest.raises(ExecutionError) as error:
        _run_startup_check(rule_runner, "src/bad:bad")

    assert "Invalid `startup_budget_ms=-5.0` in src/bad:bad" in str(error.value)


def test_int_budget_field(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/whole/BUILD": (
                "pex_binary(entry_point='main.py', startup_budget_ms=300, skip_startup_check=True)"
            )
        }
    )

    result = _run_startup_check(rule_runner, "src/whole:whole")

    assert result.exit_code == 0


_NO_VALGRIND = "--startup-check-valgrind-search-path=['/nonexistent']"
_NOT_COUNTED = "startup-check: instructions were not counted, because valgrind was not found in"


def test_always_without_valgrind(rule_runner: RuleRunner) -> None:
    result = _run_startup_check(rule_runner, _NO_VALGRIND, "src/app:plain", counting="always")

    assert result.exit_code == 2
    assert (
        "`[startup-check].count_instructions` is `always`, but valgrind was not found in "
        "/nonexistent. Install it"
    ) in result.stderr
    assert result.stdout == ""


def test_auto_without_valgrind(rule_runner: RuleRunner) -> None:
    result = _run_startup_check(rule_runner, _NO_VALGRIND, "src/app::", counting=None)

    assert result.exit_code == 0
    assert result.stdout.count(_NOT_COUNTED) == 1
    assert f"{_NOT_COUNTED} /nonexistent. Install it" in result.stdout
    assert "M instructions" not in result.stdout
    assert "src/app:store: startup check passed" in result.stdout


def test_never_counts_nothing(rule_runner: RuleRunner) -> None:
    # valgrind may be installed here, and `never` must not use it.
    result = _run_startup_check(rule_runner, "src/app:plain", counting="never")

    assert result.exit_code == 0
    assert "M instructions" not in result.stdout
    assert _NOT_COUNTED not in result.stdout


def test_invalid_count_instructions(rule_runner: RuleRunner) -> None:
    with pytest.raises(ExecutionError) as error:
        _run_startup_check(rule_runner, "src/app:plain", counting="yes")

    assert "Invalid choice 'yes'. Choose from: auto, always, never" in str(error.value)


@pytest.mark.skipif(
    not any(os.path.isfile(os.path.join(d, "valgrind")) for d in SEARCH_PATHS),
    reason="needs valgrind in the default search path",
)
def test_auto_counts_when_found(rule_runner: RuleRunner) -> None:
    without = _run_startup_check(rule_runner, _NO_VALGRIND, "src/app:plain", counting=None)
    counted = _run_startup_check(rule_runner, "src/app:plain", counting=None)

    assert without.exit_code == 0
    assert "M instructions" not in without.stdout
    # The same binary and budgets, measured again because the spec names valgrind now.
    assert counted.exit_code == 0
    assert "M instructions" in counted.stdout
    assert _NOT_COUNTED not in counted.stdout
    assert "MB over the process tree" in counted.stdout
