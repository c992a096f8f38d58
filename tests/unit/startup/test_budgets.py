from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from perfguard.findings import Severity
from perfguard.startup.budgets import Budgets, evaluate
from perfguard.startup.results import RunFailure

from .fakes import make_result, make_variant

STEADY_MS = [100.0, 101.0, 99.0, 100.5, 100.2, 99.8, 100.1, 99.9, 100.3, 100.4]


def _rules(report: object) -> list[str]:
    return [finding.rule_id for finding in report.findings]  # type: ignore[attr-defined]


def test_within_budgets() -> None:
    report = evaluate(make_result(make_variant(STEADY_MS, importtime=None)), binary="app:bin")

    assert report.findings == ()
    assert not report.blocking
    assert report.median_ns == pytest.approx(100.15e6)
    assert report.sample_count == 10
    assert "app:bin: startup 100 ms (98% CI 99.8-100.5 ms, 10 runs)" in report.format_text()


def test_startup_over_budget_blocks() -> None:
    walls = [612.0, 598.0, 630.0, 605.0, 615.0, 620.0, 610.0, 600.0, 625.0, 611.0]

    report = evaluate(make_result(make_variant(walls, importtime=None)))

    finding = report.findings[0]
    assert finding.rule_id == "startup-time"
    assert finding.severity is Severity.error
    assert finding.message == "startup 612 ms (98% CI 600-625 ms) is over the 500 ms budget"
    assert finding.cost is not None and finding.cost.ms == pytest.approx(611.5)


def test_startup_within_uncertainty_warns() -> None:
    walls = [490.0, 495.0, 505.0, 510.0, 520.0, 498.0, 502.0, 507.0, 493.0, 512.0]

    report = evaluate(make_result(make_variant(walls, importtime=None)))

    assert _rules(report) == ["startup-time"]
    assert report.findings[0].severity is Severity.warning
    assert "within its measured uncertainty" in report.findings[0].message
    assert not report.blocking


def test_noisy_timings_warn() -> None:
    walls = [100.0, 140.0, 60.0, 100.0, 120.0, 80.0, 150.0]

    report = evaluate(make_result(make_variant(walls, importtime=None)))

    assert _rules(report) == ["noisy-measurement"]
    assert "robust coefficient of variation" in report.findings[0].message


def test_peak_memory() -> None:
    report = evaluate(make_result(make_variant(STEADY_MS, rss_mb=150.0, importtime=None)))

    assert _rules(report) == ["peak-memory"]
    assert report.findings[0].message == (
        "peak RSS 150.0 MB in the largest single process (median of 10 runs) is over the "
        "100 MB budget"
    )


def test_tree_memory_over_budget() -> None:
    variant = dataclasses.replace(
        make_variant(STEADY_MS, rss_mb=60.0, importtime=None),
        tree_rss_bytes=130_000_000,
        tree_rss_source="/proc",
        tree_rss_samples=40,
    )

    report = evaluate(make_result(variant))

    assert _rules(report) == ["peak-memory"]
    assert report.findings[0].message == (
        "peak RSS 130.0 MB summed over the process tree (largest of 40 samples from /proc in "
        "one run, while the largest single process peaked at 60.0 MB) is over the 100 MB budget"
    )
    assert report.findings[0].cost is not None
    assert report.findings[0].cost.mb == pytest.approx(130.0)
    assert "peak RSS 60.0 MB in one process, 130.0 MB over the process tree" in (
        report.format_text()
    )


def test_kernel_memory_larger_than_tree() -> None:
    variant = dataclasses.replace(
        make_variant(STEADY_MS, rss_mb=150.0, importtime=None),
        tree_rss_bytes=120_000_000,
        tree_rss_source="psutil",
        tree_rss_samples=9,
    )

    report = evaluate(make_result(variant))

    assert _rules(report) == ["peak-memory"]
    assert report.findings[0].message.startswith(
        "peak RSS 150.0 MB in the largest single process (median of 10 runs)"
    )


def test_tree_memory_within_budget() -> None:
    variant = dataclasses.replace(
        make_variant(STEADY_MS, rss_mb=20.0, importtime=None),
        tree_rss_bytes=90_000_000,
        tree_rss_source="/proc",
        tree_rss_samples=12,
    )

    report = evaluate(make_result(variant))

    assert report.findings == ()
    assert report.tree_rss_bytes == 90_000_000


def test_prohibited_and_slow_imports() -> None:
    report = evaluate(make_result(make_variant(STEADY_MS)), prohibited=("pandas",))

    (prohibited,) = [f for f in report.findings if f.rule_id == "prohibited-module"]
    assert prohibited.severity is Severity.critical
    assert prohibited.message == (
        "startup imports prohibited package pandas (120 ms with its dependencies) via "
        "app -> app.db -> pandas"
    )
    assert prohibited.fix == "Move the import of pandas in app.db into the function that uses it."
    assert prohibited.cost is not None and prohibited.cost.ms == 120.0
    assert "slow-import" not in _rules(report)
    assert report.blocking


def test_slow_import_without_prohibition() -> None:
    report = evaluate(make_result(make_variant(STEADY_MS)), prohibited=())

    (slow,) = [f for f in report.findings if f.rule_id == "slow-import"]
    assert slow.message.startswith("importing pandas takes 120 ms of its own")
    assert slow.data["chain"] == ("app", "app.db", "pandas")


def test_prohibited_ignores_prefix_alike() -> None:
    text = "import time:       10 |         10 | numpyro\n"

    report = evaluate(make_result(make_variant(STEADY_MS, importtime=text)), prohibited=("numpy",))

    assert report.findings == ()
    assert report.heavy_packages == ()


def test_heavy_import_count() -> None:
    text = "".join(
        f"import time:       10 |         10 | {name}\n"
        for name in ("numpy.core", "pandas", "torch", "sqlalchemy.orm")
    )

    report = evaluate(make_result(make_variant(STEADY_MS, importtime=text)), prohibited=())

    assert _rules(report) == ["heavy-import-count"]
    assert report.findings[0].message == (
        "startup loads 4 heavy packages (numpy, pandas, sqlalchemy, torch), over the budget of 3"
    )


def test_failure_findings() -> None:
    failure = RunFailure(
        phase="warmup",
        kind="exit",
        exit_code=3,
        wall_ns=10,
        stderr_tail="Traceback\nImportError: no module x\n",
    )

    report = evaluate(make_result(make_variant([], failures=[failure], importtime=None)))

    assert _rules(report) == ["binary-failed"]
    assert report.findings[0].message == (
        "binary exited with status 3 during a warmup run; stderr ends with: "
        "Traceback\nImportError: no module x"
    )
    assert report.median_ns is None
    assert "no successful timed runs" in report.format_text()


def test_ab_regression_names_grown_imports() -> None:
    fast = make_variant(STEADY_MS, importtime="import time:  1000 |  1000 | app\n")
    slow_text = "import time:  30000 |  30000 |   yaml\n" "import time:   1500 |  31500 | app\n"
    slow = make_variant([ms + 30 for ms in STEADY_MS], importtime=slow_text)

    report = evaluate(make_result(fast, candidate=slow))

    assert _rules(report) == ["startup-modules-added", "startup-regression"]
    added, regression = report.findings
    assert added.message == "startup now loads 1 modules that the baseline binary did not: yaml"
    assert regression.message.startswith(
        "startup 130 ms is 30.0% slower than the baseline binary 100 ms (shift +30 ms, "
    )
    assert regression.message.endswith("imports that grew: yaml +30 ms")
    assert report.comparison is not None and report.comparison.p_value < 0.001


def test_ab_same_speed_passes() -> None:
    walls = STEADY_MS
    report = evaluate(make_result(make_variant(walls), candidate=make_variant(walls[::-1])))

    assert "startup-regression" not in _rules(report)
    assert report.comparison is not None and not report.comparison.is_significant


def test_invalid_budgets() -> None:
    with pytest.raises(ValueError) as raised:
        Budgets(startup_ms=0, max_heavy_imports=-1)

    assert "startup_ms must be a positive number, got 0" in str(raised.value)
    assert "max_heavy_imports must be an integer >= 0, got -1" in str(raised.value)


PEX_IMPORTTIME = (Path(__file__).parent / "data" / "importtime-pex-zipapp-3.9.txt").read_text()


def test_pex_launcher_kept_out_of_checks() -> None:
    variant = make_variant(STEADY_MS, importtime=PEX_IMPORTTIME)

    report = evaluate(make_result(variant), Budgets(single_import_ms=100.0), binary="app:bin")

    assert "slow-import" not in _rules(report)
    assert not [name for name in variant.loaded_modules if name.split(".")[0] == "pex"]
    assert report.launcher_ns == pytest.approx(827363e3)
    assert report.launcher_processes == 2
    assert "pex bootstrap 827 ms of imports in 2 interpreter processes" in report.format_text()
    finding = [f for f in report.findings if f.rule_id == "launcher-overhead"][0]
    assert finding.severity is Severity.warning
    assert 'execution_mode="venv"' in (finding.fix or "")


def test_pex_launcher_under_threshold() -> None:
    variant = make_variant(STEADY_MS, importtime=PEX_IMPORTTIME)

    report = evaluate(make_result(variant), Budgets(launcher_ms=900.0))

    assert "launcher-overhead" not in _rules(report)
    assert report.launcher_ns is not None


def test_no_launcher_figure_without_pex() -> None:
    report = evaluate(make_result(make_variant(STEADY_MS)))

    assert report.launcher_ns is None
    assert "pex bootstrap" not in report.format_text()


@pytest.mark.parametrize(
    "before, after, blocks",
    [
        (1_000_000, 1_030_000, True),
        (1_000_000, 1_010_000, False),
        (None, 1_030_000, False),
        (1_000_000, None, False),
    ],
)
def test_instruction_growth_ab(before: object, after: object, blocks: bool) -> None:
    baseline = dataclasses.replace(make_variant(STEADY_MS, importtime=None), instructions=before)
    candidate = dataclasses.replace(make_variant(STEADY_MS, importtime=None), instructions=after)

    report = evaluate(make_result(baseline, candidate), binary="app:bin")

    assert ("startup-instructions" in _rules(report)) is blocks
    assert report.blocking is blocks
    assert "+0.0% against the reference (one-sided p=" in report.format_text()
