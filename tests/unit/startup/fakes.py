"""Builders and fakes shared by the startup tests."""

from __future__ import annotations

from typing import List, Optional, Sequence

from perfguard.startup.measure import HarnessRunner
from perfguard.startup.results import (
    Environment,
    HarnessResult,
    HarnessSpec,
    ImportTimeCapture,
    RunFailure,
    Sample,
    VariantResult,
)

ENVIRONMENT = Environment(
    python="3.11.7",
    python_implementation="CPython",
    executable="/usr/bin/python3.11",
    platform="Linux-test",
    machine="x86_64",
    cpu_model="Test CPU",
    cpu_count=2,
    loadavg=(0.1, 0.2, 0.3),
    loadavg_after=(0.1, 0.2, 0.3),
)

APP_IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       500 |        500 |   json
import time:     90000 |      90000 |       pandas.core
import time:     30000 |     120000 |     pandas
import time:      2000 |     122000 |   app.db
import time:      1000 |     123500 | app
"""


def make_variant(
    walls_ms: Sequence[float],
    rss_mb: float = 20.0,
    importtime: Optional[str] = APP_IMPORTTIME,
    failures: Sequence[RunFailure] = (),
    command: Sequence[str] = ("python", "app.pex"),
) -> VariantResult:
    samples = tuple(
        Sample(
            wall_ns=int(ms * 1e6),
            max_rss_bytes=int(rss_mb * 1e6),
            user_s=0.01,
            sys_s=0.01,
            children_user_s=0.01,
            children_sys_s=0.01,
            stdout_bytes=0,
            stderr_bytes=0,
        )
        for ms in walls_ms
    )
    captures = (ImportTimeCapture(importtime, truncated=False),) if importtime else ()
    return VariantResult(
        command=tuple(command),
        samples=samples,
        failures=tuple(failures),
        importtime=captures,
        converged=True,
        warmup_runs=2,
    )


def make_result(
    baseline: VariantResult,
    candidate: Optional[VariantResult] = None,
    environment: Environment = ENVIRONMENT,
) -> HarnessResult:
    return HarnessResult(
        harness_version=1,
        environment=environment,
        baseline=baseline,
        candidate=candidate,
        elapsed_ns=1_000_000_000,
    )


class FakeHarnessRunner(HarnessRunner):
    """Returns a canned result and records the specs it was given."""

    def __init__(self, result: HarnessResult) -> None:
        self.result = result
        self.specs: List[HarnessSpec] = []

    def run(self, spec: HarnessSpec) -> HarnessResult:
        self.specs.append(spec)
        return self.result
