"""Import cost probe: measure what importing each module costs in a fresh interpreter.

Usage: `python import_cost.py SPEC.json`, where the spec is
`{"modules": ["numpy", "sqlalchemy.orm"], "runs": 3, "timeout_s": 120}`.

For each module the probe starts `sys.executable -X importtime` once to warm the bytecode cache,
then `runs` more times, each importing only that module. A run reports the sum of the
cumulative `-X importtime` figures of the top-level imports after startup (in ms) and the growth
of the peak resident set size while the module loads (in MB, 1 MB = 2**20 bytes). The probe
writes the median of each figure to stdout as one JSON document and exits 0, also when a module
fails to import (its entry then has an `error`). It exits 2 when the spec is unusable.

The probe runs under the target's own interpreter (CPython 3.7 or newer, inside the target's
requirements-only virtualenv), so it uses only the standard library and 3.7 syntax.
"""

import json
import statistics
import subprocess
import sys

COST_PROBE_VERSION = 1
MARKER = "perfguard-import-cost-start"

# Runs in the child. Only `sys`, `time` and `resource` are loaded before the marker, and
# `json` after the import, so the figures after the marker belong to the measured module.
_CHILD = """
import resource, sys, time
name = sys.argv[1]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.stderr.write("{marker}\\n")
sys.stderr.flush()
start = time.perf_counter()
__import__(name)
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import json
sys.stdout.write(json.dumps({{"wall_s": wall, "rss_before": before, "rss_after": after}}))
""".format(
    marker=MARKER
)

# ru_maxrss is in KiB on Linux and in bytes on macOS.
_RSS_UNIT_BYTES = 1 if sys.platform == "darwin" else 1024


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: import_cost.py SPEC.json\n")
        return 2
    try:
        with open(argv[1], "rb") as spec_file:
            spec = json.loads(spec_file.read().decode("utf-8"))
        modules, runs, timeout = _validate_spec(spec)
    except (OSError, ValueError) as e:
        sys.stderr.write("import_cost: invalid spec {!r}: {}\n".format(argv[1], e))
        return 2
    document = {
        "cost_probe_version": COST_PROBE_VERSION,
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "modules": [measure_module(module, runs, timeout) for module in modules],
    }
    sys.stdout.write(json.dumps(document, sort_keys=True))
    sys.stdout.write("\n")
    return 0


def _validate_spec(spec):
    if not isinstance(spec, dict) or not isinstance(spec.get("modules"), list):
        raise ValueError('expected an object with a "modules" list')
    modules = spec["modules"]
    if not all(isinstance(module, str) and module for module in modules):
        raise ValueError('"modules" must contain non-empty strings')
    runs = spec.get("runs", 3)
    timeout = spec.get("timeout_s", 120)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError('"runs" must be a positive integer, got {!r}'.format(runs))
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError('"timeout_s" must be a positive number, got {!r}'.format(timeout))
    return modules, runs, float(timeout)


def measure_module(module, runs, timeout):
    """Import `module` in 1 + `runs` fresh interpreters and return the median figures."""
    entry = {"module": module, "error": None, "ms": None, "mb": None, "wall_ms": None, "runs": 0}
    samples = []
    for index in range(runs + 1):
        sample, error = _run_child(module, timeout)
        if error is not None:
            entry["error"] = error
            return entry
        if index > 0:
            samples.append(sample)
    entry["ms"] = round(statistics.median(s["ms"] for s in samples), 3)
    entry["mb"] = round(statistics.median(s["mb"] for s in samples), 3)
    entry["wall_ms"] = round(statistics.median(s["wall_ms"] for s in samples), 3)
    entry["runs"] = len(samples)
    return entry


def _run_child(module, timeout):
    command = [sys.executable, "-X", "importtime", "-c", _CHILD, module]
    try:
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, "importing {} timed out after {:.0f} s".format(module, timeout)
    except OSError as e:
        return None, "starting {} failed: {}".format(sys.executable, e)
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode != 0:
        lines = [line for line in stderr.splitlines() if not line.startswith("import time:")]
        detail = lines[-1].strip() if lines else "no error output"
        return None, "exit status {}: {}".format(completed.returncode, detail)
    try:
        figures = json.loads(completed.stdout.decode("utf-8"))
    except ValueError:
        return None, "the measuring child printed no figures (the module may write to stdout)"
    rss_bytes = max(0, figures["rss_after"] - figures["rss_before"]) * _RSS_UNIT_BYTES
    sample = {
        "ms": sum_top_level_importtime(stderr) / 1000.0,
        "mb": rss_bytes / float(1 << 20),
        "wall_ms": figures["wall_s"] * 1000.0,
    }
    return sample, None


def sum_top_level_importtime(stderr):
    """Sum the cumulative microseconds of top-level imports logged after the start marker.

    A line reads `import time: SELF | CUMULATIVE | NAME`, and NAME is indented by two spaces
    per nesting level, so a top-level import has exactly one space after the second `|`.
    """
    total = 0
    started = False
    for line in stderr.splitlines():
        if line == MARKER:
            started = True
            continue
        if not started or not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        name = fields[2]
        if name.startswith(" ") and not name.startswith("  "):
            total += int(fields[1])
    return total


if __name__ == "__main__":
    sys.exit(main(sys.argv))
