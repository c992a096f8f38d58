"""Runner port: how the engine starts the harness. Tests pass a fake runner."""

from __future__ import annotations

import abc
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from perfguard.startup.clock import Clock, SystemClock, format_duration_ms
from perfguard.startup.errors import HarnessFailed
from perfguard.startup.results import HarnessResult, HarnessSpec

logger = logging.getLogger(__name__)

HARNESS_PATH = Path(__file__).resolve().parent.parent / "scripts" / "startup_harness.py"


class HarnessRunner(abc.ABC):
    """Runs the startup harness for a spec and returns its validated result."""

    @abc.abstractmethod
    def run(self, spec: HarnessSpec) -> HarnessResult:
        """Measure the spec's command; raise HarnessFailed if the harness itself fails."""


class SubprocessHarnessRunner(HarnessRunner):
    """Runs `startup_harness.py` in a child interpreter, by default the current one.

    `timeout_s` bounds the whole harness run. When it is None, the bound is the number of runs
    in the spec (warm-up, max runs, importtime and memory runs, per variant) times the per-run
    time-out.
    """

    def __init__(
        self,
        python: Optional[str] = None,
        harness_path: Path = HARNESS_PATH,
        clock: Optional[Clock] = None,
        timeout_s: Optional[float] = None,
    ) -> None:
        self._python = python or sys.executable
        self._harness_path = harness_path
        self._clock = clock or SystemClock()
        self._timeout_s = timeout_s

    def run(self, spec: HarnessSpec) -> HarnessResult:
        with tempfile.TemporaryDirectory(prefix="perfguard-startup-") as tmp:
            spec_path = os.path.join(tmp, "spec.json")
            with open(spec_path, "w", encoding="utf-8") as spec_file:
                spec_file.write(spec.to_json())
            completed = self._run_harness(
                [self._python, str(self._harness_path), spec_path],
                self._timeout_s or _overall_timeout_s(spec),
            )
        if completed.returncode != 0:
            raise HarnessFailed(
                f"startup harness {self._harness_path} failed with status "
                f"{completed.returncode}: {completed.stderr.strip()[-2000:]}"
            )
        return HarnessResult.from_json(completed.stdout, source=f"output of {self._harness_path}")

    def _run_harness(
        self, argv: Sequence[str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        started = self._clock.monotonic_ns()
        logger.debug("Starting startup harness: %s", " ".join(argv))
        try:
            completed = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise HarnessFailed(
                f"startup harness {self._harness_path} timed out after {timeout_s:.0f} s"
            ) from None
        logger.debug(
            "Startup harness finished in %s.",
            format_duration_ms(self._clock.monotonic_ns() - started),
        )
        return completed


def _overall_timeout_s(spec: HarnessSpec) -> float:
    runs = spec.warmup + spec.max_runs + (spec.importtime_runs if spec.importtime else 0)
    runs += 1 if spec.tree_memory else 0
    # The harness gives a callgrind run 100 times the time-out of a normal run.
    runs += 100 if spec.valgrind else 0
    variants = 2 if spec.candidate_command is not None else 1
    # The 60 s margin covers the harness's own start-up and JSON output.
    return runs * variants * spec.timeout_s + 60.0
