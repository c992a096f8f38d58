"""Turn the JSON lines of `trustworthiness.py` into the Markdown table of RESULTS.md.

    python bench/startup/summarize.py FILE...

Every decision rule reads the stored samples, so rules can be compared on the same trials.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from perfguard.startup.stats import binomial_cdf, compare_samples  # noqa: E402

ALPHA = 0.01
# Instruction counts of identical runs with PYTHONHASHSEED=0 matched exactly on the bench
# machine, so this margin only absorbs path and environment differences between builds.
INSTRUCTION_MARGIN = 0.02
SCENARIO_NAMES = {"aa": "A/A false alarms", "pct5": "+5% detected", "ms10": "+10 ms detected"}
Record = Mapping[str, Any]


def mann_whitney_wall(record: Record) -> bool:
    sides = record["sides"]
    return compare_samples(sides["a"]["wall_ms"], sides["b"]["wall_ms"], alpha=ALPHA,
                           min_effect=1e-9).is_regression


def mann_whitney_cpu(record: Record) -> bool:
    sides = record["sides"]
    return compare_samples(sides["a"]["cpu_ms"], sides["b"]["cpu_ms"], alpha=ALPHA,
                           min_effect=1e-9).is_regression


def paired_sign_wall(record: Record) -> bool:
    """Sign test on interleaved pairs: run i of B against the adjacent run i of A."""
    a, b = record["sides"]["a"]["wall_ms"], record["sides"]["b"]["wall_ms"]
    slower = sum(1 for x, y in zip(a, b) if y > x)
    n = sum(1 for x, y in zip(a, b) if y != x)
    p_value = 1.0 - binomial_cdf(slower - 1, n) if slower else 1.0
    return p_value < ALPHA


def instruction_ratio(record: Record) -> bool:
    counts = record["instructions"]
    return counts["b"] / counts["a"] > 1.0 + INSTRUCTION_MARGIN


def hyperfine_interval(record: Record) -> bool:
    """Flag when B's mean minus one standard deviation is above A's mean plus one."""
    a, b = record["times_ms"]["a"], record["times_ms"]["b"]
    return statistics.mean(b) - statistics.stdev(b) > statistics.mean(a) + statistics.stdev(a)


def hyperfine_welch(record: Record) -> bool:
    """Two-sided Welch test at 5% with B slower, as one would run on hyperfine's exported runs.

    NOTE: the p-value uses the normal approximation of the t distribution, which overstates
    significance a little at hyperfine's 10 to 30 runs per side.
    """
    a, b = record["times_ms"]["a"], record["times_ms"]["b"]
    error = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
    z = (statistics.mean(b) - statistics.mean(a)) / error
    p_value = math.erfc(abs(z) / math.sqrt(2.0))
    return p_value < 0.05 and z > 0


def pyperf_compare_to(record: Record) -> bool:
    text = record["compare_to"]
    return "Not significant" not in text and "slower" in text


RULES: Dict[str, Tuple[str, Callable[[Record], bool]]] = {
    "perfguard interleaved, Mann-Whitney on wall time": ("perfguard", mann_whitney_wall),
    "perfguard interleaved, Mann-Whitney on CPU time": ("perfguard", mann_whitney_cpu),
    "perfguard interleaved, sign test on pairs": ("perfguard", paired_sign_wall),
    "startup-check instruction gate (harness with valgrind) > +2%": (
        "instructions",
        instruction_ratio,
    ),
    "cachegrind run directly, instruction count > +2%": ("cachegrind", instruction_ratio),
    "hyperfine, mean ± σ intervals apart": ("hyperfine", hyperfine_interval),
    "hyperfine runs, Welch test": ("hyperfine", hyperfine_welch),
    "pyperf compare_to": ("pyperf", pyperf_compare_to),
}


def summarize(records: Sequence[Record]) -> str:
    trials = [r for r in records if r.get("kind") == "trial"]
    lines = [
        "| rule | " + " | ".join(SCENARIO_NAMES.values()) + " | runs per check | s per check |",
        "| --- | " + " | ".join("---" for _ in SCENARIO_NAMES) + " | --- | --- |",
    ]
    for label, (method, rule) in RULES.items():
        mine = [r for r in trials if r["method"] == method]
        if not mine:
            continue
        cells = []
        for scenario in SCENARIO_NAMES:
            group = [r for r in mine if r["scenario"] == scenario]
            flagged = sum(1 for r in group if rule(r))
            cells.append(f"{flagged}/{len(group)}" if group else "-")
        runs = statistics.mean(r["runs"] for r in mine)
        seconds = statistics.mean(r["wall_s"] for r in mine)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {runs:.0f} | {seconds:.1f} |")
    return "\n".join(lines)


def main(paths: List[str]) -> int:
    records = [json.loads(line) for path in paths for line in Path(path).read_text().splitlines()]
    for record in records:
        if record.get("kind") == "calibration":
            print(f"calibration: A median {record['median_ms']:.1f} ms, "
                  f"+5% = {record['target_ms']['pct5']:.1f} ms of loop")
    print(summarize(records))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
