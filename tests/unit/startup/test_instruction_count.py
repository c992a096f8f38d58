"""Instruction counts of the harness under the real valgrind, for programs that exec and fork."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest

from perfguard.startup.budgets import evaluate
from perfguard.startup.measure import SubprocessHarnessRunner
from perfguard.startup.results import HarnessSpec

from .harness_module import load_harness

VALGRIND = shutil.which("valgrind")
ONE_COUNTED_RUN: Dict[str, Any] = {
    "warmup": 0,
    "min_runs": 1,
    "max_runs": 1,
    "importtime": False,
    "tree_memory": False,
    "timeout_s": 20.0,
}
# Runs argv[2] empty loop iterations, then re-executes the interpreter on this script with
# argv[1] one lower and no extra iterations, until argv[1] is 0. That last stage runs a fixed
# loop and exits.
LAUNCHER = """
import os, sys
stages, loops = int(sys.argv[1]), int(sys.argv[2])
for _ in range(loops):
    pass
if stages > 0:
    os.execv(sys.executable, [sys.executable, "-S", __file__, str(stages - 1), "0"])
for _ in range(200000):
    pass
"""
# Loops, then starts the child that argv[1] selects: none, a subprocess, or a plain fork.
PARENT = """
import os, subprocess, sys
for _ in range(500000):
    pass
if sys.argv[1] == "spawn":
    subprocess.run([sys.executable, "-S", "-c", "pass"], check=True)
elif sys.argv[1] == "fork":
    pid = os.fork()
    if pid == 0:
        for _ in range(100000):
            pass
        os._exit(0)
    os.waitpid(pid, 0)
"""

needs_valgrind = pytest.mark.skipif(VALGRIND is None, reason="needs valgrind on PATH")


harness = load_harness()


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def _count(command: List[str]) -> int:
    spec = HarnessSpec.build(command, valgrind=VALGRIND, **ONE_COUNTED_RUN)
    variant = SubprocessHarnessRunner().run(spec).baseline
    assert variant.failures == ()
    assert variant.instruction_counter == "callgrind"
    assert variant.instructions is not None
    return variant.instructions


@needs_valgrind
def test_counts_stage_that_exec_replaces(tmp_path: Path) -> None:
    launcher = _script(tmp_path, "launcher.py", LAUNCHER)

    empty = _count([sys.executable, "-S", "-c", "pass"])
    without_exec = _count([sys.executable, "-S", launcher, "0", "0"])
    one_exec = _count([sys.executable, "-S", launcher, "1", "0"])
    two_execs = _count([sys.executable, "-S", launcher, "2", "0"])

    # Each stage that execs starts one more interpreter, which costs about as much as `pass`.
    assert one_exec - without_exec > 0.5 * empty
    assert two_execs - one_exec > 0.5 * empty
    assert two_execs - one_exec < 2 * empty


@needs_valgrind
def test_first_stage_regression_blocks(tmp_path: Path) -> None:
    launcher = _script(tmp_path, "launcher.py", LAUNCHER)
    spec = HarnessSpec.build(
        [sys.executable, "-S", launcher, "1", "0"],
        candidate_command=[sys.executable, "-S", launcher, "1", "300000"],
        valgrind=VALGRIND,
        **ONE_COUNTED_RUN,
    )

    result = SubprocessHarnessRunner().run(spec)
    report = evaluate(result, binary="launcher")

    assert result.candidate is not None
    before, after = result.baseline.instructions, result.candidate.instructions
    assert before is not None and after is not None
    assert after > 1.02 * before
    assert [f.rule_id for f in report.findings] == ["startup-instructions"]
    assert "callgrind with PYTHONHASHSEED=0" in report.findings[0].message


@needs_valgrind
def test_subprocess_counted_once(tmp_path: Path) -> None:
    parent = _script(tmp_path, "parent.py", PARENT)

    alone = _count([sys.executable, "-S", parent, "none"])
    child = _count([sys.executable, "-S", "-c", "pass"])
    with_child = _count([sys.executable, "-S", parent, "spawn"])

    assert with_child > alone + 0.9 * child
    # A child that counted the copy of its parent's counts would add about `alone` again.
    assert with_child < alone + child + 0.05 * alone


@needs_valgrind
def test_fork_without_exec_counted_once(tmp_path: Path) -> None:
    parent = _script(tmp_path, "parent.py", PARENT)

    alone = _count([sys.executable, "-S", parent, "none"])
    forked = _count([sys.executable, "-S", parent, "fork"])

    # The forked child's own loop is a fifth of the parent's.
    assert forked > alone
    assert forked < 1.5 * alone


def test_sum_callgrind_totals(tmp_path: Path) -> None:
    (tmp_path / "000001.callgrind.out.10").write_bytes(b"")
    (tmp_path / "000002.callgrind.out.10.1").write_bytes(b"events: Ir\nsummary: 7\ntotals: 7\n")
    (tmp_path / "000003.callgrind.out.10").write_bytes(b"events: Ir\nsummary: 5\ntotals: 5\n")

    assert harness.sum_callgrind_totals(str(tmp_path)) == 12


def test_sum_rejects_incomplete_file(tmp_path: Path) -> None:
    (tmp_path / "000001.callgrind.out.10").write_bytes(b"events: Ir\nsummary: 5\ntotals: 5\n")
    (tmp_path / "000002.callgrind.out.11").write_bytes(b"events: Ir\nsummary: 9\nfn=(1) main\n")

    assert harness.sum_callgrind_totals(str(tmp_path)) is None


def test_sum_without_counts(tmp_path: Path) -> None:
    assert harness.sum_callgrind_totals(str(tmp_path)) is None
    (tmp_path / "000001.callgrind.out.10").write_bytes(b"")

    assert harness.sum_callgrind_totals(str(tmp_path)) is None


def test_collector_keeps_reused_names(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    parts_dir = tmp_path / "parts"
    out_dir.mkdir()
    parts_dir.mkdir()
    collector = harness.CallgrindFileCollector(str(out_dir), str(parts_dir))

    (out_dir / "callgrind.out.10.1").write_text("first stage")
    collector.sweep()
    (out_dir / "callgrind.out.10.1").write_text("second stage")
    collector.sweep()

    contents = sorted(path.read_text() for path in parts_dir.iterdir())
    assert contents == ["first stage", "second stage"]
    assert list(out_dir.iterdir()) == []


@needs_valgrind
def test_failed_counted_run(tmp_path: Path) -> None:
    # The counted run alone sets PYTHONHASHSEED=0, so only that run exits with status 4.
    program = "import os, sys; sys.exit(4 if os.environ.get('PYTHONHASHSEED') == '0' else 0)"
    spec = HarnessSpec.build(
        [sys.executable, "-S", "-c", program], valgrind=VALGRIND, **ONE_COUNTED_RUN
    )

    result = SubprocessHarnessRunner().run(spec)
    report = evaluate(result, binary="picky")

    failures = result.baseline.failures
    assert [(f.phase, f.kind, f.exit_code) for f in failures] == [("instructions", "exit", 4)]
    assert result.baseline.instructions is None
    assert len(result.baseline.samples) == 1
    assert "binary exited with status 4 during a" in report.findings[0].message


def test_missing_valgrind_path() -> None:
    spec = HarnessSpec.build(
        [sys.executable, "-S", "-c", "pass"], valgrind="/nonexistent/valgrind", **ONE_COUNTED_RUN
    )

    variant = SubprocessHarnessRunner().run(spec).baseline

    assert [(f.phase, f.kind) for f in variant.failures] == [("instructions", "spawn")]
    assert "FileNotFoundError" in variant.failures[0].error
    assert variant.instructions is None
    assert variant.instruction_counter is None
