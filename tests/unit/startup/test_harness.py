"""The harness run for real on this machine's interpreters, plus its loop with a fake runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from perfguard.startup.budgets import evaluate
from perfguard.startup.errors import HarnessFailed, InvalidSpec
from perfguard.startup.measure import HARNESS_PATH, SubprocessHarnessRunner
from perfguard.startup.results import HarnessResult, HarnessSpec

from .harness_module import PYENV_VERSIONS, PYTHON_37, load_harness

PYTHON_313 = PYENV_VERSIONS / "3.13.0" / "bin" / "python3.13"
FAST: Dict[str, Any] = {"warmup": 0, "min_runs": 2, "max_runs": 2, "timeout_s": 20.0}


harness = load_harness()


def _measure(command: List[str], **options: Any) -> HarnessResult:
    settings = {**FAST, **options}
    return SubprocessHarnessRunner().run(HarnessSpec.build(command, **settings))


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_stdlib_import(tmp_path: Path) -> None:
    command = [sys.executable, _script(tmp_path, "import json\nprint('ready')\n")]

    result = _measure(command, warmup=1, min_runs=3, max_runs=3)

    variant = result.baseline
    assert result.candidate is None
    assert variant.failures == ()
    assert variant.warmup_runs == 1
    assert len(variant.samples) == 3
    assert all(sample.max_rss_bytes > 1_000_000 for sample in variant.samples)
    assert all(sample.stdout_bytes == len("ready\n") for sample in variant.samples)
    assert "json" in variant.profiles[0].module_names
    assert variant.profiles[0].import_chain("json.scanner")[0] == "json"
    assert result.environment.cpu_count == os.cpu_count()


@pytest.mark.skipif(not PYTHON_37.exists(), reason="needs CPython 3.7 at " + str(PYTHON_37))
def test_runs_under_python_37(tmp_path: Path) -> None:
    runner = SubprocessHarnessRunner(python=str(PYTHON_37))
    spec = HarnessSpec.build([str(PYTHON_37), "-c", "import json"], **FAST)

    result = runner.run(spec)

    assert result.environment.python == "3.7.16"
    assert len(result.baseline.samples) == 2
    assert "json" in result.baseline.profiles[0].module_names


def test_exit_status_failure(tmp_path: Path) -> None:
    command = [
        sys.executable,
        _script(
            tmp_path,
            """
        import sys
        sys.stderr.write("config missing\\n")
        sys.exit(3)
    """,
        ),
    ]

    result = _measure(command)

    failures = result.baseline.failures
    assert len(failures) == 1
    assert failures[0].kind == "exit"
    assert failures[0].phase == "timed"
    assert failures[0].exit_code == 3
    assert failures[0].stderr_tail == "config missing\n"
    assert result.baseline.samples == ()
    assert result.baseline.importtime == ()
    report = evaluate(result)
    assert [f.rule_id for f in report.findings] == ["binary-failed"]
    assert "exited with status 3 during a timed run" in report.findings[0].message


def test_signal_failure(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]

    result = _measure(command, warmup=1)

    failure = result.baseline.failures[0]
    assert failure.kind == "signal"
    assert failure.phase == "warmup"
    assert failure.signal_name == "SIGSEGV"
    assert failure.exit_code is None
    assert "killed by SIGSEGV" in evaluate(result).findings[0].message


def test_missing_executable(tmp_path: Path) -> None:
    result = _measure([str(tmp_path / "no-such-binary")])

    failure = result.baseline.failures[0]
    assert failure.kind == "spawn"
    assert "FileNotFoundError" in failure.error
    finding = evaluate(result).findings[0]
    assert finding.rule_id == "binary-failed"
    assert "could not start: FileNotFoundError" in finding.message


def test_timeout_kills_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    command = [
        sys.executable,
        _script(
            tmp_path,
            f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """,
        ),
    ]

    result = _measure(command, timeout_s=1.0)

    failure = result.baseline.failures[0]
    assert failure.kind == "timeout"
    assert failure.wall_ns >= 1_000_000_000  # type: ignore[operator]
    assert result.baseline.samples == ()
    grandchild = int(pid_file.read_text())
    _assert_gone(grandchild)
    finding = evaluate(result).findings[0]
    assert finding.rule_id == "binary-timeout"
    assert "timed out after 1.0 s" in finding.message


def _assert_gone(pid: int) -> None:
    # The grandchild was re-parented to init, which reaps it shortly after the kill.
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"process {pid} survived the time-out")


def test_large_stderr_keeps_tail(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; sys.stderr.write('x' * 5_000_000 + 'END'); sys.exit(1)",
    ]

    result = _measure(command, max_output_bytes=1000)

    failure = result.baseline.failures[0]
    assert failure.stderr_bytes == 5_000_003
    assert len(failure.stderr_tail) == 1000
    assert failure.stderr_tail.endswith("xxEND")


def test_large_output_is_not_failure(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; sys.stdout.write('y' * 3_000_000)"]

    result = _measure(command, importtime=False)

    assert result.baseline.failures == ()
    assert [s.stdout_bytes for s in result.baseline.samples] == [3_000_000, 3_000_000]


def test_prohibited_module_chain(tmp_path: Path) -> None:
    packages = tmp_path / "site"
    (packages / "pandas").mkdir(parents=True)
    (packages / "pandas" / "__init__.py").write_text("import pandas.core\n")
    (packages / "pandas" / "core.py").write_text("VALUE = 1\n")
    (packages / "app").mkdir()
    (packages / "app" / "__init__.py").write_text("")
    (packages / "app" / "db.py").write_text("import pandas\n")
    (packages / "numpyro.py").write_text("")
    command = [sys.executable, "-c", "import numpyro, app.db"]

    result = _measure(command, env={"PYTHONPATH": str(packages)})
    report = evaluate(result, prohibited=("pandas", "numpy"))

    prohibited = [f for f in report.findings if f.rule_id == "prohibited-module"]
    assert len(prohibited) == 1
    assert prohibited[0].data["chain"] == ("app.db", "pandas")
    assert prohibited[0].data["modules"] == ("pandas", "pandas.core")
    assert prohibited[0].severity.value == "critical"
    assert prohibited[0].cost is not None and prohibited[0].cost.ms is not None
    assert "via app.db -> pandas" in prohibited[0].message
    assert report.heavy_packages == ("pandas",)


def test_failed_optional_import_not_prohibited(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "try:\n    import pandas\nexcept ImportError:\n    pass"]

    result = _measure(command, env={"PYTHONPATH": str(tmp_path)})
    report = evaluate(result, prohibited=("pandas",))

    capture = result.baseline.importtime[0]
    assert "pandas" in capture.profile.module_names
    assert capture.modules_at_exit is not None
    assert "pandas" not in capture.modules_at_exit
    assert "pandas" not in result.baseline.loaded_modules
    assert [f.rule_id for f in report.findings if f.rule_id == "prohibited-module"] == []


def test_existing_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.stdout.write('custom')\n")
    command = [sys.executable, "-c", "import json"]

    result = _measure(command, env={"PYTHONPATH": str(tmp_path)})

    assert [s.stdout_bytes for s in result.baseline.samples] == [6, 6]
    modules = result.baseline.importtime[0].modules_at_exit
    assert modules is not None
    assert "json" in modules


def test_without_module_recorder(tmp_path: Path) -> None:
    result = _measure([sys.executable, "-c", "import json"], record_modules=False)

    assert result.baseline.importtime[0].modules_at_exit is None
    assert "json" in result.baseline.loaded_modules


def test_ab_interleaved(tmp_path: Path) -> None:
    spec = HarnessSpec.build(
        [sys.executable, "-c", "pass"],
        candidate_command=[sys.executable, "-c", "import json"],
        **FAST,
    )

    result = SubprocessHarnessRunner().run(spec)

    assert result.candidate is not None
    assert len(result.baseline.samples) == 2
    assert len(result.candidate.samples) == 2
    assert "json" in result.candidate.profiles[0].module_names
    assert "json" not in result.baseline.profiles[0].module_names


@pytest.mark.skipif(not PYTHON_313.exists(), reason="needs CPython 3.13")
def test_importtime_through_env_var(tmp_path: Path) -> None:
    # PYTHONPROFILEIMPORTTIME reaches an interpreter started by a launcher script.
    launcher = _script(
        tmp_path,
        f"""
        import os, sys
        os.execv({str(PYTHON_313)!r}, [{str(PYTHON_313)!r}, "-c", "import json"])
    """,
    )

    result = _measure([sys.executable, launcher])

    profile = result.baseline.profiles[0]
    assert profile.process_count == 2
    assert profile.find_first_node("json").process == 1  # type: ignore[union-attr]


# --- Invalid specs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, message",
    [
        ({}, "command: missing; expected a non-empty list of strings"),
        ({"command": []}, "command: expected a non-empty list of strings, got []"),
        ({"command": ["python", 3]}, "command: every argument must be a string"),
        ({"command": ["python"], "min_runs": 0}, "min_runs: expected an integer >= 1, got 0"),
        ({"command": ["python"], "timeout_s": "1"}, "timeout_s: expected a finite number"),
        ({"command": ["python"], "timeout_s": -1}, "timeout_s: expected a number > 0.0, got -1"),
        (
            {"command": ["python"], "min_runs": 9, "max_runs": 3},
            "max_runs: 3 is less than min_runs 9",
        ),
        ({"command": ["python"], "runs": 3}, "runs: unknown field"),
        (
            {"command": ["python"], "candidate": {"command": "x"}},
            "candidate.command: expected a non-empty list of strings, got 'x'",
        ),
        ({"command": ["python"], "env": {"A": 1}}, "env: expected an object of string to string"),
    ],
)
def test_harness_rejects_bad_spec(spec: Dict[str, Any], message: str) -> None:
    with pytest.raises(harness.SpecError) as raised:
        harness.load_spec(spec)

    assert message in str(raised.value)


def test_harness_bad_spec_exit_status(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"command": [], "warmup": -1}))

    completed = subprocess.run(
        [sys.executable, str(HARNESS_PATH), str(spec_path)], capture_output=True, text=True
    )

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "command: expected a non-empty list of strings" in completed.stderr
    assert "warmup: expected an integer >= 0, got -1" in completed.stderr
    assert str(spec_path) in completed.stderr


def test_harness_unreadable_spec(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text("{not json")

    completed = subprocess.run(
        [sys.executable, str(HARNESS_PATH), str(spec_path)], capture_output=True, text=True
    )

    assert completed.returncode == 2
    assert f"cannot read harness spec {spec_path}" in completed.stderr


def test_engine_spec_validation() -> None:
    with pytest.raises(InvalidSpec) as raised:
        HarnessSpec.build([], min_runs=0, target_rel_ci=float("nan"))

    message = str(raised.value)
    assert "command: expected a non-empty list of strings, got ()" in message
    assert "min_runs: expected an integer >= 1, got 0" in message
    assert "target_rel_ci: expected a finite number > 0, got nan" in message


def test_spec_round_trip() -> None:
    spec = HarnessSpec.build(
        ["python", "app.pex"],
        env={"B": "2", "A": "1"},
        candidate_command=["python", "new.pex"],
        max_runs=9,
    )

    loaded = harness.load_spec(json.loads(spec.to_json()))

    assert loaded["command"] == ["python", "app.pex"]
    assert loaded["env"] == {"A": "1", "B": "2"}
    assert loaded["candidate"] == {"command": ["python", "new.pex"], "env": {}}
    assert loaded["max_runs"] == 9


def test_runner_reports_harness_failure(tmp_path: Path) -> None:
    broken = tmp_path / "harness.py"
    broken.write_text("import sys; sys.stderr.write('boom'); sys.exit(5)\n")
    runner = SubprocessHarnessRunner(harness_path=broken)

    with pytest.raises(HarnessFailed, match="failed with status 5: boom"):
        runner.run(HarnessSpec.build(["python"]))


# --- The benchmark loop with a fake runner ------------------------------------------------


class FakeRun:
    """Stands in for `run_once`: returns scripted wall times and records the call order."""

    def __init__(self, walls_ns: Dict[str, List[int]], fail_at: int = -1) -> None:
        self.walls_ns = walls_ns
        self.calls: List[str] = []
        self.fail_at = fail_at

    def __call__(
        self,
        command: List[str],
        env: Dict[str, str],
        cwd: Any,
        timeout_s: float,
        stdout_limit: int,
        stderr_limit: int,
    ) -> Dict[str, Any]:
        name = command[0]
        self.calls.append(name + (":importtime" if "PYTHONPROFILEIMPORTTIME" in env else ""))
        if len(self.calls) - 1 == self.fail_at:
            return {
                "kind": "exit",
                "exit_code": 1,
                "signal": None,
                "wall_ns": 5,
                "stdout_bytes": 0,
                "stderr_bytes": 4,
                "stderr": "bad\n",
                "stderr_truncated": False,
            }
        series = self.walls_ns[name]
        wall = series[min(len(self.calls) - 1, len(series) - 1)]
        return {
            "kind": "ok",
            "wall_ns": wall,
            "max_rss_bytes": 1024,
            "user_s": 0.0,
            "sys_s": 0.0,
            "children_user_s": 0.0,
            "children_sys_s": 0.0,
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "exit_code": 0,
            "signal": None,
            "stderr": "import time: 1 | 1 | m\n",
            "stderr_truncated": False,
        }


def test_loop_interleaves_ab() -> None:
    spec = harness.load_spec(
        {
            "command": ["A"],
            "candidate": {"command": ["B"]},
            "warmup": 1,
            "min_runs": 3,
            "max_runs": 3,
        }
    )
    runner = FakeRun({"A": [100], "B": [100]})

    variants = harness.run_benchmark(spec, runner)

    # After the timed runs, each variant gets its importtime run, then its memory run.
    assert runner.calls == [
        *("A", "B", "A", "B", "B", "A", "A", "B"),
        *("A:importtime", "A", "B:importtime", "B"),
    ]
    assert variants["baseline"]["converged"]
    assert len(variants["candidate"]["samples"]) == 3


def test_loop_stops_when_converged() -> None:
    spec = harness.load_spec(
        {"command": ["A"], "warmup": 0, "min_runs": 7, "max_runs": 40, "importtime": False}
    )
    runner = FakeRun({"A": [100] * 40})

    variants = harness.run_benchmark(spec, runner)

    assert len(variants["baseline"]["samples"]) == 7
    assert variants["baseline"]["converged"]


def test_loop_runs_to_max_when_noisy() -> None:
    spec = harness.load_spec(
        {"command": ["A"], "warmup": 0, "min_runs": 3, "max_runs": 12, "importtime": False}
    )
    runner = FakeRun({"A": [100, 200, 50, 300, 10, 250, 80, 400, 20, 150, 30, 500]})

    variants = harness.run_benchmark(spec, runner)

    assert len(variants["baseline"]["samples"]) == 12
    assert not variants["baseline"]["converged"]


def test_loop_stops_variant_at_first_failure() -> None:
    spec = harness.load_spec({"command": ["A"], "warmup": 1, "min_runs": 5, "max_runs": 5})
    runner = FakeRun({"A": [100]}, fail_at=2)

    variants = harness.run_benchmark(spec, runner)

    assert runner.calls == ["A", "A", "A"]
    assert variants["baseline"]["failures"][0]["phase"] == "timed"
    assert variants["baseline"]["failures"][0]["stderr_tail"] == "bad\n"
    assert len(variants["baseline"]["samples"]) == 1
    assert variants["baseline"]["importtime"] == []


def test_measure_uses_clock() -> None:
    spec = harness.load_spec({"command": ["A"], "warmup": 0, "min_runs": 1, "max_runs": 1})
    readings = iter([1_000, 4_500])

    document = harness.measure(spec, FakeRun({"A": [7]}), clock=lambda: next(readings))

    assert document["elapsed_ns"] == 3_500
    assert document["harness_version"] == 1
    assert HarnessResult.from_json(json.dumps(document)).baseline.wall_ns == (7,)


def test_tail_buffer_bounds_memory() -> None:
    buffer = harness.TailBuffer(10)
    for _ in range(10_000):
        buffer.write(b"0123456789abcdef")

    assert buffer.total == 160_000
    assert buffer.truncated
    assert buffer.text() == "6789abcdef"
    assert len(buffer._data) <= 2 * 10 + 65536 + 16


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind on PATH")
def test_instruction_count_ab() -> None:
    spec = HarnessSpec.build(
        [sys.executable, "-S", "-c", "pass"],
        candidate_command=[sys.executable, "-S", "-c", "for _ in range(300000): pass"],
        importtime=False,
        valgrind=shutil.which("valgrind"),
        **{**FAST, "min_runs": 1, "max_runs": 1},  # type: ignore[arg-type]
    )

    result = SubprocessHarnessRunner().run(spec)
    report = evaluate(result, binary="spin")

    assert result.candidate is not None
    assert result.baseline.instructions is not None
    assert result.candidate.instructions is not None
    assert result.candidate.instructions > 1.02 * result.baseline.instructions
    assert "startup-instructions" in [f.rule_id for f in report.findings]
    assert report.blocking


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind on PATH")
def test_instruction_count_repeats() -> None:
    command = [sys.executable, "-S", "-c", "import json"]
    spec = HarnessSpec.build(
        command,
        candidate_command=command,
        importtime=False,
        valgrind=shutil.which("valgrind"),
        **{**FAST, "min_runs": 1, "max_runs": 1},  # type: ignore[arg-type]
    )

    result = SubprocessHarnessRunner().run(spec)

    assert result.candidate is not None
    baseline, candidate = result.baseline.instructions, result.candidate.instructions
    assert baseline is not None and candidate is not None
    # The hash seed is fixed, so only address-space layout can make the two counts differ.
    assert abs(candidate / baseline - 1.0) < 0.001


def test_loop_stops_when_budget_decided() -> None:
    walls = [100, 200, 50, 300, 10, 250, 80, 400, 20, 150, 30, 500]
    spec = harness.load_spec(
        {
            "command": ["A"],
            "warmup": 0,
            "min_runs": 3,
            "max_runs": 12,
            "importtime": False,
            "decision_ns": 10_000,
        }
    )
    runner = FakeRun({"A": walls})

    variants = harness.run_benchmark(spec, runner)

    # Below 6 values the CI of the median is [min, max]: 50-200 after 3 runs, below 10,000.
    assert len(variants["baseline"]["samples"]) == 3
    assert variants["baseline"]["converged"]


def test_budget_inside_ci_keeps_running() -> None:
    walls = [100, 200, 50, 300, 10, 250, 80, 400, 20, 150, 30, 500]
    spec = harness.load_spec(
        {
            "command": ["A"],
            "warmup": 0,
            "min_runs": 3,
            "max_runs": 12,
            "importtime": False,
            "decision_ns": 120,
        }
    )
    runner = FakeRun({"A": walls})

    variants = harness.run_benchmark(spec, runner)

    assert len(variants["baseline"]["samples"]) == 12
    assert not variants["baseline"]["converged"]


def test_invalid_decision_ns() -> None:
    with pytest.raises(harness.SpecError, match="decision_ns: expected a number > 0"):
        harness.load_spec({"command": ["A"], "decision_ns": 0})
    with pytest.raises(InvalidSpec, match="decision_ns: expected a finite number > 0"):
        HarnessSpec.build(["A"], decision_ns=-1.0)


@pytest.mark.skipif(not os.environ.get("PERFGUARD_PEX_CLI"), reason="needs the pex CLI of ./pants")
def test_venv_pex_import_profile(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("import helper\n")
    (source / "helper.py").write_text("import json\nprint(json.dumps([1]))\n")
    pex = tmp_path / "app.pex"
    subprocess.run(
        [
            sys.executable,
            os.environ["PERFGUARD_PEX_CLI"],
            "--venv",
            "-D",
            str(source),
            "-m",
            "app",
            "-o",
            str(pex),
            "--python",
            sys.executable,
        ],
        check=True,
        env={**os.environ, "PEX_ROOT": str(tmp_path / "pex_root")},
    )
    env = {"PEX_ROOT": str(tmp_path / "pex_root")}
    plain = _measure([sys.executable, str(pex)], env=env)
    direct = _measure([sys.executable, str(pex)], env=env, program_args_start=2)

    # The venv interpreter runs with -E, so the plain importtime run never sees the program.
    assert "helper" not in plain.baseline.profiles[0].module_names
    assert "helper" in direct.baseline.profiles[0].module_names
    assert "json" in direct.baseline.loaded_modules
    assert direct.baseline.importtime[0].modules_at_exit is not None
