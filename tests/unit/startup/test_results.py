from __future__ import annotations

import copy
import json
from typing import Any, Dict, Tuple

import pytest

from perfguard.startup.errors import MalformedHarnessOutput
from perfguard.startup.results import HarnessResult

DOCUMENT: Dict[str, Any] = {
    "harness_version": 1,
    "elapsed_ns": 10,
    "environment": {
        "python": "3.9.18",
        "python_implementation": "CPython",
        "executable": "/bin/python",
        "platform": "Linux",
        "machine": "x86_64",
        "cpu_model": None,
        "cpu_count": 2,
        "loadavg": [0.5, 0.4, 0.3],
        "loadavg_after": None,
    },
    "variants": {
        "baseline": {
            "command": ["python", "app.pex"],
            "env": {},
            "converged": True,
            "warmup_runs": 2,
            "samples": [
                {
                    "wall_ns": 5,
                    "max_rss_bytes": 1024,
                    "user_s": 0.1,
                    "sys_s": 0,
                    "children_user_s": 0,
                    "children_sys_s": 0,
                    "stdout_bytes": 0,
                    "stderr_bytes": 0,
                }
            ],
            "failures": [{"phase": "importtime", "kind": "spawn", "error": "ENOENT"}],
            "importtime": [
                {
                    "stderr": "import time: 3 | 3 | json\nimport time: 2 | 2 | yaml\n",
                    "truncated": False,
                    "modules_at_exit": ["json", "sys"],
                }
            ],
        },
    },
}


def test_valid_document() -> None:
    result = HarnessResult.from_json(json.dumps(DOCUMENT))

    assert result.candidate is None
    assert result.measured is result.baseline
    assert result.baseline.wall_ns == (5,)
    assert result.baseline.failures[0].describe() == "could not start: ENOENT"
    assert result.baseline.profiles[0].module_names == frozenset({"json", "yaml"})
    assert result.baseline.loaded_modules == frozenset({"json", "sys"})
    assert result.environment.loadavg == (0.5, 0.4, 0.3)


def test_counts_and_tree_memory() -> None:
    document = copy.deepcopy(DOCUMENT)
    variant = document["variants"]["baseline"]
    variant.update(
        instructions=2_379_000_000,
        instruction_counter="callgrind",
        tree_rss_bytes=150_000_000,
        tree_rss_source="/proc",
        tree_rss_samples=61,
    )
    variant["failures"][0]["phase"] = "memory"

    result = HarnessResult.from_json(document)

    assert result.baseline.instructions == 2_379_000_000
    assert result.baseline.instruction_counter == "callgrind"
    assert result.baseline.tree_rss_bytes == 150_000_000
    assert result.baseline.tree_rss_source == "/proc"
    assert result.baseline.tree_rss_samples == 61
    assert result.baseline.failures[0].phase == "memory"


def test_tree_memory_missing_means_unmeasured() -> None:
    result = HarnessResult.from_json(json.dumps(DOCUMENT))

    assert result.baseline.tree_rss_bytes is None
    assert result.baseline.tree_rss_source is None
    assert result.baseline.tree_rss_samples == 0
    assert result.baseline.instruction_counter is None


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ("variants", "baseline", "tree_rss_bytes"),
            -5,
            "variants.baseline.tree_rss_bytes: expected an integer >= 0, got -5",
        ),
        (
            ("variants", "baseline", "tree_rss_source"),
            7,
            "variants.baseline.tree_rss_source: expected a string, got 7",
        ),
        (("harness_version",), 2, "harness_version 2 is not supported, expected 1"),
        (
            ("variants", "baseline", "samples", 0, "wall_ns"),
            -1,
            "harness output.variants.baseline.samples[0].wall_ns: expected an integer >= 0, got -1",
        ),
        (
            ("variants", "baseline", "samples", 0, "user_s"),
            "fast",
            "samples[0].user_s: expected a number, got 'fast'",
        ),
        (
            ("variants", "baseline", "failures", 0, "kind"),
            "crash",
            "failures[0].kind: expected one of exit, signal, timeout, spawn, got 'crash'",
        ),
        (("variants", "baseline", "converged"), "yes", "converged: expected true or false"),
        (
            ("variants", "baseline", "command"),
            "python app.pex",
            "command: expected a list of strings",
        ),
        (("environment",), [], "harness output.environment: expected a JSON object, got list"),
        (
            ("variants", "baseline", "importtime", 0, "modules_at_exit"),
            "json",
            "importtime[0].modules_at_exit: expected a list of strings, got 'json'",
        ),
    ],
)
def test_malformed_field(path: Tuple[Any, ...], value: Any, message: str) -> None:
    document = copy.deepcopy(DOCUMENT)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(MalformedHarnessOutput) as raised:
        HarnessResult.from_json(document)

    assert message in str(raised.value)


def test_missing_field() -> None:
    document = copy.deepcopy(DOCUMENT)
    del document["variants"]["baseline"]["samples"]

    with pytest.raises(MalformedHarnessOutput, match=r"variants\.baseline\.samples: missing"):
        HarnessResult.from_json(document)


def test_not_json() -> None:
    with pytest.raises(MalformedHarnessOutput, match="out.json is not valid JSON"):
        HarnessResult.from_json("Traceback (most recent call last):", source="out.json")
