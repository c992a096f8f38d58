from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from perfguard.findings import Severity
from perfguard.startup.baseline import (
    StoredBinary,
    build_baseline,
    format_baseline,
    read_baseline,
    write_baseline,
)
from perfguard.startup.budgets import DEFAULT_HEAVY_MODULES, evaluate
from perfguard.startup.clock import FakeClock
from perfguard.startup.errors import BaselineMismatch, BaselineNotFound, CorruptBaseline
from perfguard.startup.results import RunFailure

from .fakes import ENVIRONMENT, make_result, make_variant

STEADY_MS = [100.0, 101.0, 99.0, 100.5, 100.2, 99.8, 100.1, 99.9, 100.3, 100.4]
BASE_IMPORTS = (
    "import time:        500 |        500 |   json\n" "import time:       1000 |       1500 | app\n"
)
GROWN_IMPORTS = (
    "import time:        500 |        500 |   json\n"
    "import time:      25000 |      25000 |     yaml\n"
    "import time:       2000 |      27000 |   app.config\n"
    "import time:       1000 |      28500 | app\n"
)


def _record(tmp_path: Path) -> Path:
    result = make_result(make_variant(STEADY_MS, importtime=BASE_IMPORTS))
    baseline = build_baseline("app:bin", result, DEFAULT_HEAVY_MODULES, clock=FakeClock())
    path = tmp_path / "startup" / "app.json"
    write_baseline(path, baseline)
    return path


def test_round_trip(tmp_path: Path) -> None:
    path = _record(tmp_path)

    loaded = read_baseline(path, binary="app:bin")

    assert loaded.binary == "app:bin"
    assert loaded.recorded_at == "2024-01-01T00:00:00+00:00"
    assert loaded.samples_ns == tuple(sorted(int(ms * 1e6) for ms in STEADY_MS))
    assert loaded.median_ns == pytest.approx(100.15e6)
    assert loaded.modules == {"app": (1000, 1500), "json": (500, 500)}
    assert loaded.environment["cpu_model"] == "Test CPU"
    assert "loadavg" not in loaded.environment
    assert format_baseline(loaded) == path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["app.json"]


def test_format_is_diff_friendly(tmp_path: Path) -> None:
    text = _record(tmp_path).read_text()

    assert text.endswith("}\n")
    assert '    "app": {"cumulative_us": 1500, "self_us": 1000},\n' in text
    assert json.loads(text)["schema_version"] == 1
    keys = [line.split('"')[1] for line in text.splitlines() if line.startswith('  "')]
    assert keys == sorted(keys)


def test_unchanged_binary_passes(tmp_path: Path) -> None:
    baseline = read_baseline(_record(tmp_path), binary="app:bin")
    current = make_result(make_variant(STEADY_MS[::-1], importtime=BASE_IMPORTS))

    report = evaluate(current, baseline=baseline)

    assert report.findings == ()
    assert report.binary == "app:bin"
    assert report.comparison is not None


def test_regression_names_grown_imports(tmp_path: Path) -> None:
    baseline = read_baseline(_record(tmp_path), binary="app:bin")
    current = make_result(make_variant([ms + 25 for ms in STEADY_MS], importtime=GROWN_IMPORTS))

    report = evaluate(current, baseline=baseline)

    rules = [f.rule_id for f in report.findings]
    assert rules == ["startup-modules-added", "startup-regression"]
    added, regression = report.findings
    assert added.data["added"] == ("app.config", "yaml")
    assert added.blocking
    assert "than the stored baseline 100 ms" in regression.message
    assert regression.message.endswith("imports that grew: yaml +25 ms, app +2.0 ms")
    assert regression.data["grown_imports"] == (("yaml", 25000), ("app", 2000))


def test_heavy_growth_blocks_without_timing(tmp_path: Path) -> None:
    baseline = read_baseline(_record(tmp_path), binary="app:bin")
    text = BASE_IMPORTS + "import time:        10 |         10 | numpy\n"
    current = make_result(make_variant(STEADY_MS, importtime=text))

    report = evaluate(current, baseline=baseline, prohibited=())

    rules = [f.rule_id for f in report.findings]
    assert rules == ["heavy-import-count", "startup-modules-added"]
    assert report.findings[0].message == (
        "heavy imports grew from 0 in the stored baseline to 1: numpy added"
    )


def test_other_python_downgrades_module_findings(tmp_path: Path) -> None:
    baseline = read_baseline(_record(tmp_path), binary="app:bin")
    environment = dataclasses.replace(ENVIRONMENT, python="3.12.1")
    variant = make_variant(STEADY_MS, importtime=GROWN_IMPORTS)
    current = make_result(variant, environment=environment)

    report = evaluate(current, baseline=baseline)

    by_rule = {f.rule_id: f for f in report.findings}
    assert by_rule["baseline-environment"].message.startswith(
        "the baseline was recorded with a different python"
    )
    assert by_rule["startup-modules-added"].severity.value == "warning"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"

    with pytest.raises(BaselineNotFound) as raised:
        read_baseline(path, binary="app:bin")

    assert str(raised.value) == (
        f"startup baseline {path} not found; run with --update-baseline to record it"
    )
    assert not path.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ("[]", "the document must be a JSON object"),
        ('{"schema_version": 1, "binary": "app:bin"}', "startup must be an object"),
        (
            '{"schema_version": 1, "binary": "app:bin", "startup": {"samples_ns": []}}',
            "startup.samples_ns must be a non-empty list of non-negative integers",
        ),
        (
            '{"schema_version": 1, "binary": "app:bin", "startup": {"samples_ns": [1]}, '
            '"modules": {"json": {"self_us": "1"}}}',
            "modules.json must be an object with integer self_us and cumulative_us",
        ),
    ],
)
def test_corrupt_file_untouched(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "app.json"
    path.write_text(content)

    with pytest.raises(CorruptBaseline) as raised:
        read_baseline(path, binary="app:bin")

    assert str(path) in str(raised.value)
    assert message in str(raised.value)
    assert path.read_text() == content


def test_mismatched_binary(tmp_path: Path) -> None:
    path = _record(tmp_path)
    before = path.read_text()

    with pytest.raises(BaselineMismatch) as raised:
        read_baseline(path, binary="other:bin")

    assert str(raised.value) == (
        f"startup baseline {path} belongs to binary 'app:bin', not 'other:bin'; check the "
        f"baseline path configured for other:bin"
    )
    assert path.read_text() == before


def test_mismatched_schema(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"schema_version": 99, "binary": "app:bin"}')

    with pytest.raises(BaselineMismatch, match="has schema_version 99, but this perfguard"):
        read_baseline(path, binary="app:bin")


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _record(tmp_path)
    before = path.read_text()
    baseline = read_baseline(path, binary="app:bin")

    def fail_replace(source: str, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        write_baseline(path, dataclasses.replace(baseline, recorded_at="later"))

    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["app.json"]


def test_no_baseline_from_failing_binary() -> None:
    failure = RunFailure(phase="timed", kind="exit", exit_code=1, wall_ns=1)
    result = make_result(make_variant([], failures=[failure]))

    with pytest.raises(
        ValueError, match="cannot record a baseline for app:bin: the binary " "exited with status 1"
    ):
        build_baseline("app:bin", result, DEFAULT_HEAVY_MODULES)


def test_instruction_growth_blocks(tmp_path: Path) -> None:
    recorded = dataclasses.replace(
        make_variant(STEADY_MS, importtime=BASE_IMPORTS),
        instructions=600_000_000,
        instruction_counter="callgrind",
    )
    baseline = build_baseline(
        "app:bin", make_result(recorded), DEFAULT_HEAVY_MODULES, clock=FakeClock()
    )
    path = tmp_path / "app.json"
    write_baseline(path, baseline)
    stored = read_baseline(path, binary="app:bin")
    grown = dataclasses.replace(recorded, instructions=630_000_000)
    same = dataclasses.replace(recorded, instructions=600_100_000)

    grown_report = evaluate(make_result(grown), baseline=stored)
    same_report = evaluate(make_result(same), baseline=stored)

    assert stored.instructions == 600_000_000
    assert '"instructions": 600000000' in path.read_text()
    assert [f.rule_id for f in grown_report.findings] == ["startup-instructions"]
    assert grown_report.blocking
    assert "5.0% more instructions" in grown_report.findings[0].message
    assert "630.0 M instructions" in grown_report.format_text()
    assert same_report.findings == ()


def test_cachegrind_baseline_not_compared(tmp_path: Path) -> None:
    # Baselines recorded before the counter was stored hold cachegrind counts, which left out
    # the stages that exec replaces, so a new count would look far larger.
    path = _record(tmp_path)
    data = json.loads(path.read_text())
    data["startup"]["instructions"] = 1_444_000_000
    del data["startup"]["instruction_counter"]
    path.write_text(json.dumps(data))
    stored = read_baseline(path, binary="app:bin")
    current = dataclasses.replace(
        make_variant(STEADY_MS, importtime=BASE_IMPORTS),
        instructions=2_379_000_000,
        instruction_counter="callgrind",
    )

    report = evaluate(make_result(current), baseline=stored)

    assert stored.instruction_counter is None
    assert [f.rule_id for f in report.findings] == ["baseline-environment"]
    assert report.findings[0].severity is Severity.warning
    assert "taken with cachegrind, which left out the stages that exec replaces" in (
        report.findings[0].message
    )
    assert "so the two counts are not compared" in report.findings[0].message
    assert not report.blocking


def test_counter_and_tree_memory_round_trip(tmp_path: Path) -> None:
    variant = dataclasses.replace(
        make_variant(STEADY_MS, importtime=BASE_IMPORTS),
        instructions=2_379_000_000,
        instruction_counter="callgrind",
        tree_rss_bytes=143_000_000,
        tree_rss_source="/proc",
        tree_rss_samples=80,
    )
    baseline = build_baseline(
        "app:bin", make_result(variant), DEFAULT_HEAVY_MODULES, clock=FakeClock()
    )
    path = tmp_path / "app.json"

    write_baseline(path, baseline)
    stored = read_baseline(path, binary="app:bin")

    assert stored.instruction_counter == "callgrind"
    assert stored.tree_rss_bytes == 143_000_000
    assert '"instruction_counter": "callgrind"' in path.read_text()
    assert '"tree_rss_bytes": 143000000' in path.read_text()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("instruction_counter", 3, "startup.instruction_counter must be a string or null"),
        ("tree_rss_bytes", -1, "startup.tree_rss_bytes must be a non-negative number or null"),
        ("tree_rss_bytes", True, "startup.tree_rss_bytes must be a non-negative number or null"),
    ],
)
def test_invalid_counter_or_tree_memory(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = _record(tmp_path)
    data = json.loads(path.read_text())
    data["startup"][field] = value
    path.write_text(json.dumps(data))

    with pytest.raises(CorruptBaseline, match=message):
        read_baseline(path, binary="app:bin")


def test_invalid_instruction_count(tmp_path: Path) -> None:
    path = _record(tmp_path)
    data = json.loads(path.read_text())
    data["startup"]["instructions"] = "many"
    path.write_text(json.dumps(data))

    with pytest.raises(CorruptBaseline, match="startup.instructions must be a non-negative"):
        read_baseline(path, binary="app:bin")


def test_stored_binary_round_trip(tmp_path: Path) -> None:
    result = make_result(make_variant(STEADY_MS, importtime=BASE_IMPORTS))
    baseline = dataclasses.replace(
        build_baseline("app:bin", result, DEFAULT_HEAVY_MODULES, clock=FakeClock()),
        stored_binary=StoredBinary("ab12", "src.app/bin.pex"),
    )
    path = tmp_path / "app.json"

    write_baseline(path, baseline)
    stored = read_baseline(path, binary="app:bin")

    assert stored.stored_binary == StoredBinary("ab12", "src.app/bin.pex")
    assert json.loads(path.read_text())["stored_binary"] == {
        "digest": "ab12",
        "path": "src.app/bin.pex",
    }


def test_invalid_stored_binary(tmp_path: Path) -> None:
    path = _record(tmp_path)
    data = json.loads(path.read_text())
    data["stored_binary"] = {"digest": "ab12"}
    path.write_text(json.dumps(data))

    with pytest.raises(CorruptBaseline, match="stored_binary must be null or an object"):
        read_baseline(path, binary="app:bin")


def test_instruction_growth_other_cpu_warns(tmp_path: Path) -> None:
    recorded = dataclasses.replace(
        make_variant(STEADY_MS, importtime=BASE_IMPORTS), instructions=600_000_000
    )
    baseline = build_baseline(
        "app:bin", make_result(recorded), DEFAULT_HEAVY_MODULES, clock=FakeClock()
    )
    other_cpu = dataclasses.replace(ENVIRONMENT, cpu_model="Other CPU")
    grown = dataclasses.replace(recorded, instructions=630_000_000)

    report = evaluate(make_result(grown, environment=other_cpu), baseline=baseline)

    by_rule = {f.rule_id: f for f in report.findings}
    assert by_rule["startup-instructions"].severity is Severity.warning
    assert "baseline-environment" in by_rule
    assert not report.blocking
