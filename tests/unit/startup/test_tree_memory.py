"""Memory of a binary's whole process tree, sampled by the harness next to the kernel's peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from perfguard.startup.budgets import Budgets, evaluate
from perfguard.startup.measure import SubprocessHarnessRunner
from perfguard.startup.results import HarnessResult, HarnessSpec

from .harness_module import PYTHON_37, load_harness

FAST: Dict[str, Any] = {
    "warmup": 0,
    "min_runs": 2,
    "max_runs": 2,
    "importtime": False,
    "timeout_s": 20.0,
}
MB = 1_000_000
# The parent stays small and runs two children at once, each holding 60 MB for half a second.
TWO_CHILDREN = """
import subprocess, sys
child = "import time; block = b'x' * 60_000_000; time.sleep(0.5)"
children = [subprocess.Popen([sys.executable, "-S", "-c", child]) for _ in range(2)]
sys.exit(max(process.wait() for process in children))
"""


harness = load_harness()


def _two_children(tmp_path: Path) -> str:
    path = tmp_path / "two_children.py"
    path.write_text(textwrap.dedent(TWO_CHILDREN))
    return str(path)


def test_children_over_budget_by_tree(tmp_path: Path) -> None:
    spec = HarnessSpec.build([sys.executable, _two_children(tmp_path)], **FAST)

    result = SubprocessHarnessRunner().run(spec)
    report = evaluate(result, Budgets(peak_memory_mb=100.0), binary="two-children")

    variant = result.baseline
    assert variant.failures == ()
    assert report.peak_rss_bytes is not None
    assert 60 * MB < report.peak_rss_bytes < 100 * MB
    assert variant.tree_rss_bytes is not None
    assert variant.tree_rss_bytes > 120 * MB
    assert variant.tree_rss_source in ("psutil", "/proc")
    assert variant.tree_rss_samples > 10
    memory = [f for f in report.findings if f.rule_id == "peak-memory"]
    assert len(memory) == 1
    assert "summed over the process tree" in memory[0].message
    assert "while the largest single process peaked at" in memory[0].message
    assert "over the 100 MB budget" in memory[0].message
    assert "MB over the process tree" in report.format_text()


def test_one_process_figures_agree(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; block = b'x' * 150_000_000; time.sleep(0.2)"]

    result = SubprocessHarnessRunner().run(HarnessSpec.build(command, **FAST))
    report = evaluate(result, Budgets(peak_memory_mb=100.0), binary="big")

    assert report.peak_rss_bytes is not None
    assert report.tree_rss_bytes is not None
    # One process: the sampled tree figure is the same memory, seen a few pages apart.
    assert abs(report.tree_rss_bytes - report.peak_rss_bytes) < 5 * MB
    assert "peak-memory" in [f.rule_id for f in report.findings]


def test_kernel_figure_without_tree(tmp_path: Path) -> None:
    spec = HarnessSpec.build([sys.executable, _two_children(tmp_path)], tree_memory=False, **FAST)

    result = SubprocessHarnessRunner().run(spec)
    report = evaluate(result, Budgets(peak_memory_mb=100.0), binary="two-children")

    assert result.baseline.tree_rss_bytes is None
    assert "peak-memory" not in [f.rule_id for f in report.findings]
    assert "process tree memory not measured" in report.format_text()


@pytest.mark.skipif(not PYTHON_37.exists(), reason="needs CPython 3.7 at " + str(PYTHON_37))
def test_proc_reader_under_python_37(tmp_path: Path) -> None:
    no_psutil = subprocess.run([str(PYTHON_37), "-c", "import psutil"], capture_output=True)
    if no_psutil.returncode == 0:
        pytest.skip("this CPython 3.7 can import psutil")
    runner = SubprocessHarnessRunner(python=str(PYTHON_37))
    spec = HarnessSpec.build([str(PYTHON_37), _two_children(tmp_path)], **FAST)

    variant = runner.run(spec).baseline

    assert variant.tree_rss_source == "/proc"
    assert variant.tree_rss_bytes is not None
    assert variant.tree_rss_bytes > 120 * MB


def test_psutil_reader(tmp_path: Path) -> None:
    pytest.importorskip("psutil")
    spec = HarnessSpec.build([sys.executable, _two_children(tmp_path)], **FAST)

    variant = SubprocessHarnessRunner().run(spec).baseline

    assert variant.tree_rss_source == "psutil"
    assert variant.tree_rss_bytes is not None
    assert variant.tree_rss_bytes > 120 * MB


def test_not_measured_without_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import psutil` raise ImportError.
    monkeypatch.setitem(sys.modules, "psutil", None)  # type: ignore[misc]
    monkeypatch.setattr(harness, "PROC_ROOT", str(tmp_path / "no-proc"))
    spec = harness.load_spec({"command": [sys.executable, "-c", "pass"], **FAST})

    document = harness.measure(spec)
    result = HarnessResult.from_json(json.dumps(document))
    report = evaluate(result, binary="plain")

    assert harness.find_tree_rss_reader() == (None, None)
    assert result.baseline.tree_rss_bytes is None
    assert result.baseline.tree_rss_source is None
    assert result.baseline.failures == ()
    assert "process tree memory not measured" in report.format_text()
    assert report.tree_rss_bytes is None


def test_proc_descendants_rss(tmp_path: Path) -> None:
    if not os.path.isfile(f"/proc/{os.getpid()}/stat"):
        pytest.skip("needs /proc")
    child = subprocess.Popen(
        [sys.executable, "-S", "-c", "import sys; block = b'x' * 50_000_000; sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        rss_bytes = 0
        for _ in range(100):
            rss_bytes = harness.proc_descendants_rss(os.getpid())
            if rss_bytes > 50 * MB:
                break
            time.sleep(0.05)
    finally:
        child.communicate(b"")

    assert rss_bytes > 50 * MB
    assert harness.proc_descendants_rss(os.getpid()) < 50 * MB


class SamplerWatchingRun:
    """Stands in for `run_once` and records whether the tree sampler ran during each call."""

    def __init__(self) -> None:
        self.calls: List[str] = []

    def __call__(
        self,
        command: List[str],
        env: Dict[str, str],
        cwd: Any,
        timeout_s: float,
        stdout_limit: int,
        stderr_limit: int,
    ) -> Dict[str, Any]:
        sampling = any(t.name == harness.TREE_SAMPLER_THREAD for t in threading.enumerate())
        phase = "importtime" if "PYTHONPROFILEIMPORTTIME" in env else "plain"
        self.calls.append(f"{command[0]}:{phase}:{'sampled' if sampling else 'unsampled'}")
        return {
            "kind": "ok",
            "wall_ns": 100,
            "max_rss_bytes": 1024,
            "user_s": 0.0,
            "sys_s": 0.0,
            "children_user_s": 0.0,
            "children_sys_s": 0.0,
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "exit_code": 0,
            "signal": None,
            "stderr": "",
            "stderr_truncated": False,
        }


def test_sampler_runs_only_in_memory_run() -> None:
    spec = harness.load_spec(
        {
            "command": ["A"],
            "candidate": {"command": ["B"]},
            "warmup": 1,
            "min_runs": 2,
            "max_runs": 2,
        }
    )
    runner = SamplerWatchingRun()

    harness.run_benchmark(spec, runner)

    assert runner.calls == [
        "A:plain:unsampled",
        "B:plain:unsampled",
        "A:plain:unsampled",
        "B:plain:unsampled",
        "B:plain:unsampled",
        "A:plain:unsampled",
        "A:importtime:unsampled",
        "A:plain:sampled",
        "B:importtime:unsampled",
        "B:plain:sampled",
    ]


def test_tree_memory_can_be_turned_off() -> None:
    spec = harness.load_spec(
        {"command": ["A"], "warmup": 0, "min_runs": 1, "max_runs": 1, "tree_memory": False}
    )
    runner = SamplerWatchingRun()

    variants = harness.run_benchmark(spec, runner)

    assert runner.calls == ["A:plain:unsampled", "A:importtime:unsampled"]
    assert variants["baseline"]["tree_rss_bytes"] is None


def test_invalid_tree_memory() -> None:
    with pytest.raises(harness.SpecError, match="tree_memory: expected true or false, got 'yes'"):
        harness.load_spec({"command": ["A"], "tree_memory": "yes"})
