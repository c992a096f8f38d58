"""Measure false alarms and detected regressions of startup checks on a real PyPI CLI.

    python bench/startup/trustworthiness.py --venv DIR --out FILE [--trials AA,PCT5,MS10]

DIR is a scratch virtualenv with `black` and `pyperf` installed (outside the repository), and
`hyperfine` and `valgrind` must be on PATH. Each trial compares `black --version` (A) with a
candidate (B) that runs the same command with a `sitecustomize` on PYTHONPATH. In A/A trials
that module is empty. In regression trials it spins a counted loop, calibrated to cost 5% of
A's median startup or 10 ms. A gets an empty `sitecustomize` too, so both sides import one.

Methods, each with the runs and wall time it used:
  perfguard   the startup harness in A/B mode, A and B runs interleaved, raw samples stored
  instructions  the startup harness with valgrind set, as `startup-check` runs it: one timed run
              per side, then one counted run per side, instruction counts compared
  cachegrind  one `valgrind --tool=cachegrind` run per side with PYTHONHASHSEED=0, instruction
              counts compared
  hyperfine   default settings, all runs of A and then all runs of B
  pyperf      `pyperf command` with default settings for A and then B, then `compare_to`

Trials are appended to FILE as JSON lines, so a run that is cut short keeps what it measured.
`summarize.py` turns the file into the tables of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "src" / "perfguard" / "scripts" / "startup_harness.py"
SCENARIOS = ("aa", "pct5", "ms10")
METHODS = ("perfguard", "instructions", "cachegrind", "hyperfine", "pyperf")
# Timed runs per side for the interleaved harness: 2 x 30 runs of a ~170 ms command plus
# warm-up fit in the ~40 s that one default pyperf comparison takes on the 2-core bench machine.
HARNESS_RUNS = 30
SPIN_MODULE = "for _ in range({iterations}):\n    pass\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, required=True, help="Virtualenv with black and pyperf.")
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file to append to.")
    parser.add_argument("--trials", default="20,10,10",
                        help="Trials for A/A, +5%% and +10 ms, comma-separated (default 20,10,10).")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="Comma-separated subset of: " + ", ".join(METHODS) + ".")
    args = parser.parse_args()
    counts = dict(zip(SCENARIOS, (int(n) for n in args.trials.split(","))))
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    python = args.venv / "bin" / "python"
    command = [str(args.venv / "bin" / "black"), "--version"]

    with tempfile.TemporaryDirectory(prefix="perfguard-bench-") as work:
        bench = Bench(Path(work), python, command)
        calibration = bench.calibrate()
        _append(args.out, {"kind": "calibration", **calibration})
        for scenario in SCENARIOS:
            for trial in range(counts.get(scenario, 0)):
                for method in methods:
                    record = bench.run_trial(method, scenario)
                    record.update(kind="trial", scenario=scenario, trial=trial)
                    _append(args.out, record)
                    print(f"{scenario} #{trial} {method}: {record['summary']}", flush=True)
    return 0


class Bench:
    def __init__(self, work: Path, python: Path, command: List[str]) -> None:
        self.work = work
        self.python = python
        self.command = command
        self.injections: Dict[str, Path] = {}

    def calibrate(self) -> Dict[str, Any]:
        """Measure A's median startup and the loop speed, then write the injected modules."""
        empty = self._write_injection("aa", 0)
        result = self._harness({"PYTHONPATH": str(empty)}, None, runs=20)
        median_ms = statistics.median(s["wall_ns"] for s in result["baseline"]["samples"]) / 1e6
        ns_per_iteration = self._loop_speed()
        targets = {"pct5": 0.05 * median_ms, "ms10": 10.0}
        iterations = {name: int(ms * 1e6 / ns_per_iteration) for name, ms in targets.items()}
        for name, count in iterations.items():
            self._write_injection(name, count)
        return {"median_ms": median_ms, "ns_per_iteration": ns_per_iteration,
                "target_ms": targets, "iterations": iterations}

    def run_trial(self, method: str, scenario: str) -> Dict[str, Any]:
        env_a = {"PYTHONPATH": str(self.injections["aa"])}
        env_b = {"PYTHONPATH": str(self.injections[scenario])}
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        record = getattr(self, "_" + method)(env_a, env_b)
        record["method"] = method
        record["load_before"] = round(load_before, 2)
        record["wall_s"] = round(time.monotonic() - started, 2)
        return record

    def _perfguard(self, env_a: Mapping[str, str], env_b: Mapping[str, str]) -> Dict[str, Any]:
        result = self._harness(env_a, env_b, runs=HARNESS_RUNS)
        sides = {}
        for side, name in (("a", "baseline"), ("b", "candidate")):
            samples = result[name]["samples"]
            sides[side] = {
                "wall_ms": [s["wall_ns"] / 1e6 for s in samples],
                "cpu_ms": [(s["user_s"] + s["sys_s"]) * 1e3 for s in samples],
            }
        ratio = statistics.median(sides["b"]["wall_ms"]) / statistics.median(sides["a"]["wall_ms"])
        runs = 2 * (HARNESS_RUNS + 2)
        return {"runs": runs, "sides": sides, "summary": f"median ratio {ratio:.3f}"}

    def _cachegrind(self, env_a: Mapping[str, str], env_b: Mapping[str, str]) -> Dict[str, Any]:
        counts = {}
        for side, env in (("a", env_a), ("b", env_b)):
            # One plain run first, so both sides run with their bytecode caches written.
            self._run(self.command, env)
            output = self._run(
                ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                 "--cachegrind-out-file=/dev/null", *self.command],
                {**env, "PYTHONHASHSEED": "0"},
            )
            match = re.search(r"I\s+refs:\s+([\d,]+)", output.stderr)
            if match is None:
                raise RuntimeError(f"cachegrind printed no instruction count:\n{output.stderr}")
            counts[side] = int(match.group(1).replace(",", ""))
        ratio = counts["b"] / counts["a"]
        return {"runs": 4, "instructions": counts, "summary": f"instruction ratio {ratio:.4f}"}

    def _instructions(self, env_a: Mapping[str, str], env_b: Mapping[str, str]) -> Dict[str, Any]:
        valgrind = shutil.which("valgrind")
        result = self._harness(env_a, env_b, runs=1, warmup=1, valgrind=valgrind)
        counts = {"a": result["baseline"]["instructions"], "b": result["candidate"]["instructions"]}
        if None in counts.values():
            raise RuntimeError(f"the harness reported no instruction count: {counts}")
        ratio = counts["b"] / counts["a"]
        return {"runs": 6, "instructions": counts, "summary": f"instruction ratio {ratio:.4f}"}

    def _hyperfine(self, env_a: Mapping[str, str], env_b: Mapping[str, str]) -> Dict[str, Any]:
        times = {}
        for side, env in (("a", env_a), ("b", env_b)):
            export = self.work / f"hyperfine-{side}.json"
            self._run(["hyperfine", "-N", "--style", "none", "--export-json", str(export),
                       " ".join(self.command)], env)
            times[side] = [t * 1e3 for t in json.loads(export.read_text())["results"][0]["times"]]
        ratio = statistics.mean(times["b"]) / statistics.mean(times["a"])
        runs = len(times["a"]) + len(times["b"])
        return {"runs": runs, "times_ms": times, "summary": f"mean ratio {ratio:.3f}, {runs} runs"}

    def _pyperf(self, env_a: Mapping[str, str], env_b: Mapping[str, str]) -> Dict[str, Any]:
        files = {}
        values = 0
        for side, env in (("a", env_a), ("b", env_b)):
            files[side] = self.work / f"pyperf-{side}.json"
            files[side].unlink(missing_ok=True)
            self._run([str(self.python), "-m", "pyperf", "command", "--quiet",
                       "--inherit-environ=PYTHONPATH", "-o", str(files[side]), "--",
                       *self.command], env)
            document = json.loads(files[side].read_text())
            runs = document["benchmarks"][0]["runs"]
            values += sum(len(run.get("values", [])) + len(run.get("warmups", [])) for run in runs)
        compared = self._run([str(self.python), "-m", "pyperf", "compare_to",
                              str(files["a"]), str(files["b"])], {})
        text = compared.stdout.strip()
        return {"runs": values, "compare_to": text, "summary": text.replace("\n", " ")[:120]}

    def _harness(self, env_a: Mapping[str, str], env_b: Any, runs: int, warmup: int = 2,
                 valgrind: Any = None) -> Dict[str, Any]:
        spec: Dict[str, Any] = {
            "command": self.command, "env": dict(env_a), "warmup": warmup, "min_runs": runs,
            "max_runs": runs, "importtime": False, "valgrind": valgrind,
        }
        if env_b is not None:
            spec["candidate"] = {"command": self.command, "env": dict(env_b)}
        spec_path = self.work / "spec.json"
        spec_path.write_text(json.dumps(spec))
        output = self._run([sys.executable, str(HARNESS), str(spec_path)], {})
        variants = json.loads(output.stdout)["variants"]
        for name, variant in variants.items():
            if variant["failures"]:
                raise RuntimeError(f"{name} runs failed: {variant['failures'][0]}")
        return variants

    def _loop_speed(self) -> float:
        """Return the median nanoseconds per iteration of the injected loop, over 5 runs."""
        probe = ("import time\nstart = time.perf_counter_ns()\n"
                 + SPIN_MODULE.format(iterations=10**7)
                 + "print((time.perf_counter_ns() - start) / 1e7)\n")
        speeds = [float(self._run([str(self.python), "-c", probe], {}).stdout) for _ in range(5)]
        return statistics.median(speeds)

    def _write_injection(self, name: str, iterations: int) -> Path:
        folder = self.work / f"inject-{name}"
        folder.mkdir(exist_ok=True)
        body = SPIN_MODULE.format(iterations=iterations) if iterations else ""
        (folder / "sitecustomize.py").write_text(body)
        self.injections[name] = folder
        return folder

    def _run(self, argv: List[str], env: Mapping[str, str]) -> subprocess.CompletedProcess:
        completed = subprocess.run(argv, env={**os.environ, **env}, capture_output=True,
                                   text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed with status {completed.returncode}:\n"
                               f"{completed.stderr[-2000:]}")
        return completed


def _append(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("a") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")


if __name__ == "__main__":
    if shutil.which("hyperfine") is None or shutil.which("valgrind") is None:
        sys.exit("hyperfine and valgrind must be on PATH; install them with apt-get.")
    sys.exit(main())
