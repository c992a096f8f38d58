from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import List

import pytest

from perfguard.startup import cli
from perfguard.startup.baseline import read_baseline
from perfguard.startup.clock import FakeClock
from perfguard.startup.errors import CorruptBaseline, InvalidBudgets, InvalidSpec
from perfguard.startup.results import RunFailure

from .fakes import FakeHarnessRunner, make_result, make_variant

STEADY_MS = [100.0, 101.0, 99.0, 100.5, 100.2, 99.8, 100.1, 99.9, 100.3, 100.4]
QUIET_IMPORTS = "import time:        500 |        500 | json\n"


def _parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_subcommand(parser.add_subparsers())
    return parser.parse_args(["startup-check", *argv])


def _run(argv: List[str], runner: FakeHarnessRunner) -> tuple[int, str]:
    output = io.StringIO()
    status = cli.run(_parse(argv), runner=runner, clock=FakeClock(), output=output)
    return status, output.getvalue()


def test_passing_command() -> None:
    runner = FakeHarnessRunner(make_result(make_variant(STEADY_MS, importtime=QUIET_IMPORTS)))

    status, text = _run(["--name", "app", "--max-runs", "9", "--", "python", "app.pex"], runner)

    assert status == 0
    assert text.splitlines()[-1] == "app: startup check passed with 0 findings"
    assert runner.specs[0].command == ("python", "app.pex")
    assert runner.specs[0].max_runs == 9


def test_blocking_prohibited_import() -> None:
    runner = FakeHarnessRunner(make_result(make_variant(STEADY_MS)))

    status, text = _run(["--prohibit", "pandas", "--", "python", "app.pex"], runner)

    assert status == 1
    assert "prohibited-module [critical]" in text
    assert "python app.pex: startup check FAILED" in text


def test_update_then_compare(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    runner = FakeHarnessRunner(make_result(make_variant(STEADY_MS, importtime=QUIET_IMPORTS)))

    status, text = _run(
        ["--name", "app", "--baseline", str(path), "--update-baseline", "--", "python", "app.pex"],
        runner,
    )

    assert status == 0
    assert f"Wrote startup baseline for app to {path}." in text
    assert read_baseline(path, binary="app").modules == {"json": (500, 500)}
    status, text = _run(["--name", "app", "--baseline", str(path), "--", "python"], runner)
    assert status == 0


def test_failed_binary_keeps_baseline(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text("old")
    failure = RunFailure(phase="timed", kind="exit", exit_code=2, wall_ns=1)
    runner = FakeHarnessRunner(make_result(make_variant([], failures=[failure])))

    status, text = _run(["--baseline", str(path), "--update-baseline", "--", "app"], runner)

    assert status == 1
    assert "Did not write the baseline" in text
    assert path.read_text() == "old"


def test_html_output(tmp_path: Path) -> None:
    page = tmp_path / "startup.html"
    runner = FakeHarnessRunner(make_result(make_variant(STEADY_MS)))

    _run(["--html", str(page), "--", "python", "app.pex"], runner)

    assert "<svg" in page.read_text()


def test_missing_command() -> None:
    with pytest.raises(InvalidSpec, match="missing command; pass it after `--`"):
        _run([], FakeHarnessRunner(make_result(make_variant(STEADY_MS))))


def test_update_needs_baseline_path() -> None:
    with pytest.raises(InvalidSpec, match="--update-baseline needs --baseline FILE"):
        _run(["--update-baseline", "--", "app"], FakeHarnessRunner(make_result(make_variant([]))))


def test_bad_numbers() -> None:
    runner = FakeHarnessRunner(make_result(make_variant(STEADY_MS)))

    with pytest.raises(InvalidBudgets, match="startup_ms must be a positive number, got -5"):
        _run(["--budget-ms", "-5", "--", "app"], runner)
    with pytest.raises(InvalidSpec, match="min_runs: expected an integer >= 1, got 0"):
        _run(["--min-runs", "0", "--", "app"], runner)


def test_real_run_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    from perfguard.cli import main

    status = main(
        [
            "startup-check",
            "--min-runs",
            "2",
            "--max-runs",
            "2",
            "--warmup",
            "0",
            "--",
            sys.executable,
            "-c",
            "import json",
        ]
    )

    assert status == 0
    assert "startup check passed" in capsys.readouterr().out


def test_corrupt_baseline_before_measuring(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text("{")
    runner = FakeHarnessRunner(make_result(make_variant(STEADY_MS)))

    with pytest.raises(CorruptBaseline, match="is not valid JSON"):
        _run(["--baseline", str(path), "--", "app"], runner)

    assert runner.specs == []
    assert path.read_text() == "{"
