"""Measure how long a command takes to start, and how much memory it uses, on this machine.

Usage: python startup_harness.py SPEC.json

The harness writes one JSON document to stdout (schema `HARNESS_VERSION`). It uses only the
standard library and Python 3.7 syntax, because it runs inside a build sandbox under whatever
interpreter the measured binary uses. Invalid specs exit with status 2 and a message on stderr.

Spec fields (defaults in DEFAULTS): `command` is the argv to measure, and `env` is laid over the
harness's own environment (or replaces it when `inherit_env` is false). After `warmup` runs, timed
runs continue until the 95% CI of the median wall time is within `target_rel_ci` of the median,
or lies wholly on one side of `decision_ns` (a budget) if that is set, with at least `min_runs`
and at most `max_runs` runs. Then `importtime_runs` runs with
PYTHONPROFILEIMPORTTIME set capture the import profile from stderr, and with `record_modules`
a sitecustomize records sys.modules at exit. With `tree_memory`, one more run samples the
summed RSS of the command's whole process tree. A `candidate` command is run interleaved with
`command` for A/B comparisons. When `valgrind` is a path, one more run of each variant under
callgrind counts its instructions.

A run that exits non-zero, dies by a signal or passes `timeout_s` is recorded as a failure,
with the last `max_output_bytes` of its stderr, and ends the runs of that command. Output
volume alone is not a failure: stdout and stderr are drained, counted and cut to their tails.
"""

import json
import math
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict

HARNESS_VERSION = 1
IMPORTTIME_ENV = "PYTHONPROFILEIMPORTTIME"
MODULES_FILE_ENV = "PERFGUARD_MODULES_FILE"
# Runs as sitecustomize in importtime runs. It appends the names in sys.modules at exit, one per
# line, then loads the sitecustomize it shadows, if any. Processes that exec or spawn Python
# inherit the variables, so each of them appends its own list.
MODULE_RECORDER = """
import atexit, os, sys


def _perfguard_record_modules():
    path = os.environ.get("PERFGUARD_MODULES_FILE")
    if path:
        with open(path, "a") as modules_file:
            modules_file.write("\\n".join(sorted(sys.modules)) + "\\n")


atexit.register(_perfguard_record_modules)
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_recorder = sys.modules.pop("sitecustomize")
try:
    import sitecustomize
except ImportError:
    # The import system expects this module in sys.modules when its body ends.
    sys.modules["sitecustomize"] = _recorder
"""
# The tool that counts instructions, recorded with each count, because counts taken with
# another tool or method do not compare.
INSTRUCTION_COUNTER = "callgrind"
# Callgrind writes the counts so far to a new file, and starts again from zero, on entering these
# C library functions. Before execve, because exec discards valgrind's unwritten counts together
# with the process image. Before fork, vfork, clone and clone3, because a child process starts
# with a copy of its parent's counts, which the child's files would count a second time.
CALLGRIND_DUMP_BEFORE = ("execve", "fork", "vfork", "clone", "clone3")
# The last line of a complete callgrind file, with the instruction count of that file.
CALLGRIND_TOTALS = re.compile(rb"^totals: (\d+)$", re.MULTILINE)
# Seconds between two sweeps that move callgrind's files to unique names. Each stage of a process
# that execs writes under the same name, and the next stage starts a new valgrind, which takes
# far longer than this, before it can write again.
CALLGRIND_SWEEP_INTERVAL_S = 0.002
# Seconds between two samples of the process tree's memory.
TREE_SAMPLE_INTERVAL_S = 0.005
TREE_SAMPLER_THREAD = "perfguard-tree-memory"
PROC_ROOT = "/proc"
# Seconds to keep draining pipes after the child exits, in case a grandchild keeps them open.
PIPE_GRACE_S = 0.5

DEFAULTS: Dict[str, Any] = {
    "command": None,
    "env": {},
    "inherit_env": True,
    "cwd": None,
    "warmup": 2,
    "min_runs": 7,
    "max_runs": 40,
    "target_rel_ci": 0.03,
    "timeout_s": 30.0,
    "importtime": True,
    "importtime_runs": 1,
    "importtime_level": 1,
    "record_modules": True,
    "max_output_bytes": 65536,
    "max_importtime_bytes": 16 * 1024 * 1024,
    "candidate": None,
    "valgrind": None,
    "tree_memory": True,
    "decision_ns": None,
    "program_args_start": None,
}
# The line that pex 2.1 logs with PEX_VERBOSE=1 just before a venv-mode pex re-executes into its venv.
VENV_PEX_LOG = re.compile(r"^pex: Executing venv PEX for .+ at (\S+)$", re.MULTILINE)
# Fixes str and bytes hashing in the counted runs, because a random hash seed changes how much
# work dict and set operations do and so the instruction count.
COUNTED_RUN_HASH_SEED = "0"


class SpecError(Exception):
    """Indicates an invalid harness spec; the message names the field."""


def load_spec(data):
    """Validate a decoded spec and return it with defaults filled in.

    Raises SpecError naming every invalid field.
    """
    if not isinstance(data, dict):
        raise SpecError("spec: expected a JSON object, got {}".format(type(data).__name__))
    unknown = sorted(set(data) - set(DEFAULTS))
    problems = ["{}: unknown field".format(name) for name in unknown]
    spec = dict(DEFAULTS)
    spec.update(data)
    problems.extend(_check_command("command", spec["command"], spec["env"]))
    problems.extend(_check_int(spec, "warmup", 0))
    problems.extend(_check_int(spec, "min_runs", 1))
    problems.extend(_check_int(spec, "max_runs", 1))
    problems.extend(_check_int(spec, "importtime_runs", 0))
    problems.extend(_check_int(spec, "importtime_level", 1))
    problems.extend(_check_int(spec, "max_output_bytes", 0))
    problems.extend(_check_int(spec, "max_importtime_bytes", 0))
    problems.extend(_check_number(spec, "target_rel_ci", 0.0, False))
    problems.extend(_check_number(spec, "timeout_s", 0.0, False))
    if not isinstance(spec["importtime"], bool):
        problems.append("importtime: expected true or false, got {!r}".format(spec["importtime"]))
    for name in ("inherit_env", "record_modules", "tree_memory"):
        if not isinstance(spec[name], bool):
            problems.append("{}: expected true or false, got {!r}".format(name, spec[name]))
    if spec["decision_ns"] is not None:
        problems.extend(_check_number(spec, "decision_ns", 0.0, False))
    if spec["program_args_start"] is not None:
        problems.extend(_check_int(spec, "program_args_start", 1))
    if spec["valgrind"] is not None and not isinstance(spec["valgrind"], str):
        problems.append(
            "valgrind: expected a path string or null, got {!r}".format(spec["valgrind"])
        )
    if spec["cwd"] is not None and not isinstance(spec["cwd"], str):
        problems.append("cwd: expected a path string or null, got {!r}".format(spec["cwd"]))
    if not problems and spec["max_runs"] < spec["min_runs"]:
        problems.append(
            "max_runs: {} is less than min_runs {}".format(spec["max_runs"], spec["min_runs"])
        )
    candidate = spec["candidate"]
    if candidate is not None:
        if not isinstance(candidate, dict):
            problems.append("candidate: expected an object with a command, or null")
        else:
            extra = sorted(set(candidate) - {"command", "env"})
            problems.extend("candidate.{}: unknown field".format(name) for name in extra)
            candidate.setdefault("env", {})
            problems.extend(
                _check_command("candidate.command", candidate.get("command"), candidate["env"])
            )
    if problems:
        raise SpecError("invalid harness spec:\n  " + "\n  ".join(problems))
    return spec


def _check_command(name, command, env):
    problems = []
    if command is None:
        problems.append("{}: missing; expected a non-empty list of strings".format(name))
    elif not isinstance(command, list) or not command:
        problems.append("{}: expected a non-empty list of strings, got {!r}".format(name, command))
    elif not all(isinstance(arg, str) for arg in command):
        problems.append("{}: every argument must be a string, got {!r}".format(name, command))
    env_name = name.rsplit("command", 1)[0] + "env"
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        problems.append("{}: expected an object of string to string".format(env_name))
    return problems


def _check_int(spec, name, minimum):
    value = spec[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return ["{}: expected an integer >= {}, got {!r}".format(name, minimum, value)]
    return []


def _check_number(spec, name, minimum, inclusive):
    value = spec[name]
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value):
        return ["{}: expected a finite number, got {!r}".format(name, value)]
    if value < minimum or (value == minimum and not inclusive):
        return ["{}: expected a number > {}, got {!r}".format(name, minimum, value)]
    return []


# ---------------------------------------------------------------------------------------------
# Running one process


class TailBuffer(object):
    """The last `limit` bytes written to it, plus the total byte count."""

    def __init__(self, limit):
        self.limit = limit
        self.total = 0
        self._data = bytearray()

    def write(self, chunk):
        self.total += len(chunk)
        self._data.extend(chunk)
        # Trimming only when the buffer doubles keeps the cost linear in the output size.
        if len(self._data) > 2 * self.limit + 65536:
            del self._data[: len(self._data) - self.limit]

    def text(self):
        data = bytes(self._data[-self.limit :]) if self.limit else b""
        return data.decode("utf-8", "replace")

    @property
    def truncated(self):
        return self.total > self.limit


def run_once(command, env, cwd, timeout_s, stdout_limit, stderr_limit, clock=time.perf_counter_ns):
    """Run `command` once and return a dict describing how it ended.

    Wall time spans spawn to the return of wait4, measured with `clock` (nanoseconds).
    The process gets its own session, so a time-out kills the whole process group.
    """
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = clock()
    try:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        return {"kind": "spawn", "error": "{}: {}".format(type(error).__name__, error)}
    waited = {}
    waiter = threading.Thread(target=_wait_for_exit, args=(process.pid, waited, clock))
    waiter.daemon = True
    waiter.start()
    stdout = TailBuffer(stdout_limit)
    stderr = TailBuffer(stderr_limit)
    ending = _drain(
        process,
        {process.stdout: stdout, process.stderr: stderr},
        started + int(timeout_s * 1e9),
        waiter,
        clock,
    )
    if ending != "eof":
        # Either the command itself timed out, or a process it left behind keeps the pipes open.
        _kill_group(process.pid)
    waiter.join()
    # Popen must not reap the pid again, because wait4 in the waiter thread already did.
    process.returncode = 0
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _describe_exit(
        waited, started, ending == "timeout", stdout, stderr, children_before, children_after
    )


def _wait_for_exit(pid, waited, clock):
    _, status, usage = os.wait4(pid, 0)
    waited["ended"] = clock()
    waited["status"] = status
    waited["usage"] = usage


def _drain(process, buffers, deadline_ns, waiter, clock):
    """Read both pipes into their buffers until EOF.

    Returns "eof" when both pipes closed, "timeout" when the command ran past the deadline,
    and "lingering" when the command exited but another process kept a pipe open.
    """
    selector = selectors.DefaultSelector()
    for pipe in buffers:
        selector.register(pipe, selectors.EVENT_READ)
    exit_seen_at = None
    try:
        while selector.get_map():
            now = clock()
            if now >= deadline_ns:
                return "timeout" if waiter.is_alive() else "lingering"
            if exit_seen_at is None and not waiter.is_alive():
                exit_seen_at = now
            if exit_seen_at is not None and now - exit_seen_at > PIPE_GRACE_S * 1e9:
                return "lingering"
            wait_s = min((deadline_ns - now) / 1e9, 0.1)
            for key, _ in selector.select(wait_s):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    buffers[key.fileobj].write(chunk)
                else:
                    selector.unregister(key.fileobj)
        waiter.join(max(0.0, (deadline_ns - clock()) / 1e9))
        return "timeout" if waiter.is_alive() else "eof"
    finally:
        selector.close()
        for pipe in buffers:
            pipe.close()


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _max_rss_bytes(usage):
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    return usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024


def _describe_exit(waited, started, timed_out, stdout, stderr, before, after):
    status = waited["status"]
    usage = waited["usage"]
    outcome = {
        "wall_ns": waited["ended"] - started,
        "max_rss_bytes": _max_rss_bytes(usage),
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "children_user_s": round(after.ru_utime - before.ru_utime, 6),
        "children_sys_s": round(after.ru_stime - before.ru_stime, 6),
        "stdout_bytes": stdout.total,
        "stderr_bytes": stderr.total,
        "stderr_truncated": stderr.truncated,
        "stderr": stderr.text(),
        "exit_code": None,
        "signal": None,
    }
    if os.WIFSIGNALED(status):
        outcome["signal"] = os.WTERMSIG(status)
    else:
        outcome["exit_code"] = os.WEXITSTATUS(status)
    if timed_out:
        outcome["kind"] = "timeout"
    elif outcome["signal"] is not None:
        outcome["kind"] = "signal"
    elif outcome["exit_code"] != 0:
        outcome["kind"] = "exit"
    else:
        outcome["kind"] = "ok"
    return outcome


# ---------------------------------------------------------------------------------------------
# Statistics needed to decide when to stop


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    if n % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def median_ci(values, confidence=0.95):
    """Return (low, high), the distribution-free CI of the median from order statistics.

    Picks the largest k whose exact binomial coverage of [x(k), x(n-k+1)] is at least
    `confidence`, the same rule as `perfguard.startup.stats.median_ci`. Fewer than 6 values
    give (min, max).
    """
    ordered = sorted(values)
    n = len(ordered)
    rank = 1
    for candidate_rank in range(2, n // 2 + 1):
        if 1.0 - 2.0 * _binomial_cdf(candidate_rank - 1, n) < confidence:
            break
        rank = candidate_rank
    return float(ordered[rank - 1]), float(ordered[n - rank])


def _binomial_cdf(k, n):
    # P(X <= k) for X ~ Binomial(n, 1/2); math.comb needs Python 3.8, so use lgamma.
    log_half_n = n * math.log(2.0)
    return sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - log_half_n)
        for i in range(k + 1)
    )


def has_converged(values, target_rel_ci, decision_ns=None):
    """Return True when the median's CI is within `target_rel_ci` of the median, or when it
    lies wholly above or below `decision_ns`, so more runs cannot change that decision."""
    center = median(values)
    if center <= 0:
        return True
    low, high = median_ci(values)
    if decision_ns is not None and (high < decision_ns or low > decision_ns):
        return True
    return (high - low) / 2.0 / center <= target_rel_ci


# ---------------------------------------------------------------------------------------------
# Benchmark loop


def build_env(spec, overrides, importtime_level=None):
    env = dict(os.environ) if spec["inherit_env"] else {}
    env.update(overrides)
    env.pop(IMPORTTIME_ENV, None)
    if importtime_level is not None:
        env[IMPORTTIME_ENV] = str(importtime_level)
    return env


def run_benchmark(spec, runner=run_once):
    """Run warm-up, timed and importtime runs for the command and the optional candidate.

    `runner` has the signature of `run_once`; tests pass a fake. Each variant stops at its
    first failed run, because later samples of a failing binary measure nothing useful.
    """
    variants = [_new_variant("baseline", spec["command"], spec["env"])]
    if spec["candidate"] is not None:
        candidate = spec["candidate"]
        variants.append(_new_variant("candidate", candidate["command"], candidate["env"]))
    for index in range(spec["warmup"]):
        for variant in _interleave(variants, index):
            _run_and_record(spec, runner, variant, "warmup")
    timed_runs = 0
    while timed_runs < spec["max_runs"]:
        active = [v for v in variants if not v["failures"]]
        if not active:
            break
        for variant in _interleave(active, timed_runs):
            _run_and_record(spec, runner, variant, "timed")
        timed_runs += 1
        if timed_runs >= spec["min_runs"] and all(
            has_converged(v["_wall"], spec["target_rel_ci"], spec["decision_ns"])
            for v in variants
            if not v["failures"]
        ):
            break
    for variant in variants:
        walls = variant.pop("_wall")
        variant["converged"] = bool(walls) and has_converged(
            walls, spec["target_rel_ci"], spec["decision_ns"]
        )
        if spec["importtime"] and not variant["failures"]:
            command = _find_importtime_command(spec, runner, variant)
            for _ in range(spec["importtime_runs"]):
                _run_importtime(spec, runner, variant, command)
        if spec["tree_memory"] and not variant["failures"]:
            _measure_tree_memory(spec, runner, variant)
        if spec["valgrind"] and not variant["failures"]:
            _count_instructions(spec, runner, variant)
    return {v["name"]: _public(v) for v in variants}


def _new_variant(name, command, env):
    return {
        "name": name,
        "command": command,
        "env": env,
        "samples": [],
        "failures": [],
        "importtime": [],
        "warmup_runs": 0,
        "instructions": None,
        "instruction_counter": None,
        "tree_rss_bytes": None,
        "tree_rss_source": None,
        "tree_rss_samples": 0,
        "_wall": [],
    }


def _interleave(variants, index):
    # A B, then B A, so that slow drift during the benchmark affects both variants equally.
    return variants if index % 2 == 0 else list(reversed(variants))


def _run_and_record(spec, runner, variant, phase):
    if variant["failures"]:
        return
    outcome = runner(
        variant["command"],
        build_env(spec, variant["env"]),
        spec["cwd"],
        spec["timeout_s"],
        0,
        spec["max_output_bytes"],
    )
    if outcome["kind"] != "ok":
        variant["failures"].append(_failure(phase, outcome))
    elif phase == "warmup":
        variant["warmup_runs"] += 1
    else:
        variant["_wall"].append(outcome["wall_ns"])
        variant["samples"].append(
            {
                key: outcome[key]
                for key in (
                    "wall_ns",
                    "max_rss_bytes",
                    "user_s",
                    "sys_s",
                    "children_user_s",
                    "children_sys_s",
                    "stdout_bytes",
                    "stderr_bytes",
                )
            }
        )


def _find_importtime_command(spec, runner, variant):
    """Return the command for importtime runs: the measured one, or a venv pex's own venv.

    A venv-mode pex re-executes `VENV/bin/python -sE VENV/pex`, and `-E` makes that interpreter
    ignore PYTHONPROFILEIMPORTTIME and the module recorder on PYTHONPATH. When
    `program_args_start` gives where the program's arguments start in the command, one run
    with PEX_VERBOSE=1 finds the venv, and the importtime runs start it with `-s` only.
    """
    command = variant["command"]
    if spec["program_args_start"] is None:
        return command
    env = build_env(spec, variant["env"])
    env["PEX_VERBOSE"] = "1"
    outcome = runner(command, env, spec["cwd"], spec["timeout_s"], 0, spec["max_output_bytes"])
    match = VENV_PEX_LOG.search(outcome.get("stderr", "")) if outcome["kind"] == "ok" else None
    if match is None:
        return command
    venv_pex = match.group(1)
    venv_python = os.path.join(os.path.dirname(venv_pex), "bin", "python")
    return [venv_python, "-s", venv_pex] + list(command[spec["program_args_start"] :])


def _run_importtime(spec, runner, variant, command):
    env = build_env(spec, variant["env"], importtime_level=spec["importtime_level"])
    work_dir = tempfile.mkdtemp(prefix="perfguard-modules-")
    try:
        modules_file = None
        if spec["record_modules"]:
            modules_file = _install_module_recorder(work_dir, env)
        outcome = runner(
            command, env, spec["cwd"], spec["timeout_s"], 0, spec["max_importtime_bytes"]
        )
        modules = _read_module_list(modules_file) if modules_file else None
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if outcome["kind"] != "ok":
        variant["failures"].append(_failure("importtime", outcome))
        return
    variant["importtime"].append(
        {
            "stderr": outcome["stderr"],
            "truncated": outcome["stderr_truncated"],
            "modules_at_exit": modules,
        }
    )


def _count_instructions(spec, runner, variant):
    """Count the instructions of one run under callgrind, summed over every process and stage.

    Unlike wall time, the count does not depend on other load on the machine, so a few percent
    of extra work shows in a single run. Callgrind runs the command tens of times slower.

    Each process writes a file when it exits, and callgrind also writes one (and starts again
    from zero) before every function in CALLGRIND_DUMP_BEFORE. So the sum includes each stage
    of a launcher that re-executes itself, such as a zipapp pex, and counts the instructions of
    a parent only once even though a forked child starts with a copy of its counts.

    NOTE: the dump points are glibc function names. A C library that forks or execs through
    other symbols would have a child count its parent's instructions again, or lose a stage.
    """
    env = build_env(spec, variant["env"])
    env["PYTHONHASHSEED"] = COUNTED_RUN_HASH_SEED
    work_dir = tempfile.mkdtemp(prefix="perfguard-callgrind-")
    try:
        out_dir = os.path.join(work_dir, "out")
        parts_dir = os.path.join(work_dir, "parts")
        os.mkdir(out_dir)
        os.mkdir(parts_dir)
        command = [
            spec["valgrind"],
            "--tool=callgrind",
            "--trace-children=yes",
            "--dump-instr=no",
            "--dump-line=no",
            "--callgrind-out-file=" + os.path.join(out_dir, "callgrind.out.%p"),
        ]
        command.extend("--dump-before=" + name for name in CALLGRIND_DUMP_BEFORE)
        command.extend(variant["command"])
        collector = CallgrindFileCollector(out_dir, parts_dir)
        collector.start()
        try:
            outcome = runner(
                command, env, spec["cwd"], spec["timeout_s"] * 100, 0, spec["max_importtime_bytes"]
            )
        finally:
            collector.stop()
        if outcome["kind"] != "ok":
            variant["failures"].append(_failure("instructions", outcome))
            return
        total = sum_callgrind_totals(parts_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if total is not None:
        variant["instructions"] = total
        variant["instruction_counter"] = INSTRUCTION_COUNTER


class CallgrindFileCollector(object):
    """A thread that moves each file callgrind writes in `out_dir` to a unique name in `parts_dir`.

    Callgrind names a file after the process id and the number of files that the current
    valgrind wrote. A process that execs starts a new valgrind, which numbers from 1 again and
    would overwrite the previous stage's file. A thread sweeps `out_dir` every
    CALLGRIND_SWEEP_INTERVAL_S, and renaming a file that is still being written is safe,
    because the writer keeps its open descriptor.
    """

    def __init__(self, out_dir, parts_dir):
        self.out_dir = out_dir
        self.parts_dir = parts_dir
        self.moved = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.daemon = True

    def start(self):
        self._thread.start()

    def stop(self):
        """Stop the thread, then move the files written since its last sweep."""
        self._stopped.set()
        self._thread.join()
        self.sweep()

    def sweep(self):
        for name in sorted(os.listdir(self.out_dir)):
            self.moved += 1
            target = os.path.join(self.parts_dir, "{:06d}.{}".format(self.moved, name))
            os.rename(os.path.join(self.out_dir, name), target)

    def _run(self):
        while not self._stopped.wait(CALLGRIND_SWEEP_INTERVAL_S):
            self.sweep()


def sum_callgrind_totals(parts_dir):
    """Return the summed `totals:` of the callgrind files in `parts_dir`.

    Every valgrind creates an empty file under its final name when it starts, so empty files
    are skipped. Returns None when no file has counts or a file has no totals line, which means
    that callgrind could not write it completely and the sum would be too low.
    """
    total = None
    for name in os.listdir(parts_dir):
        with open(os.path.join(parts_dir, name), "rb") as part:
            data = part.read()
        if not data:
            continue
        match = CALLGRIND_TOTALS.search(data)
        if match is None:
            return None
        total = (total or 0) + int(match.group(1))
    return total


def _measure_tree_memory(spec, runner, variant):
    """Sample the summed RSS of the command's process tree during one untimed run.

    The kernel's peak RSS (ru_maxrss) is that of the largest single process, so a binary that
    starts children can use far more memory than it shows. The sums come from psutil when this
    interpreter can import it, else from /proc. Without either, the figure stays None.
    """
    source, read_tree_rss = find_tree_rss_reader()
    if read_tree_rss is None:
        return
    sampler = TreeMemorySampler(read_tree_rss)
    sampler.start()
    try:
        outcome = runner(
            variant["command"],
            build_env(spec, variant["env"]),
            spec["cwd"],
            spec["timeout_s"],
            0,
            spec["max_output_bytes"],
        )
    finally:
        sampler.stop()
    if outcome["kind"] != "ok":
        variant["failures"].append(_failure("memory", outcome))
        return
    # The peak stays None when the command exited before the first sample found it.
    variant["tree_rss_bytes"] = sampler.peak_bytes
    variant["tree_rss_source"] = source
    variant["tree_rss_samples"] = sampler.samples


class TreeMemorySampler(object):
    """A thread that samples the summed RSS of this process's descendants until it is stopped.

    `peak_bytes` is the largest sum seen, and `samples` counts the samples that found at least
    one descendant. Pages that several processes share count once per process.

    NOTE: samples are TREE_SAMPLE_INTERVAL_S apart, so a peak shorter than that can be missed.
    """

    def __init__(self, read_tree_rss, interval_s=TREE_SAMPLE_INTERVAL_S):
        self.peak_bytes = None
        self.samples = 0
        self._read_tree_rss = read_tree_rss
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=TREE_SAMPLER_THREAD)
        self._thread.daemon = True

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopped.set()
        self._thread.join()

    def _run(self):
        root = os.getpid()
        while not self._stopped.is_set():
            total = self._read_tree_rss(root)
            # None means that the tree could not be read, and 0 that it had no process yet.
            if total:
                self.samples += 1
                self.peak_bytes = max(self.peak_bytes or 0, total)
            self._stopped.wait(self._interval_s)


def find_tree_rss_reader():
    """Return (source, function) where the function sums the RSS of a pid's descendants.

    The source is "psutil" or "/proc". (None, None) means that neither works here.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return "psutil", lambda pid: _psutil_descendants_rss(psutil, pid)
    proc_root = PROC_ROOT
    if os.path.isfile(os.path.join(proc_root, str(os.getpid()), "stat")):
        return "/proc", lambda pid: proc_descendants_rss(pid, proc_root)
    return None, None


def _psutil_descendants_rss(psutil, pid):
    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return None
    total = 0
    for process in descendants:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            # The process exited after the listing, so it has no memory left to count.
            pass
    return total


def proc_descendants_rss(pid, proc_root=PROC_ROOT):
    """Return the summed RSS in bytes of the descendants of `pid`, read from /proc/PID/stat."""
    try:
        names = os.listdir(proc_root)
    except OSError:
        return None
    children = {}
    rss_pages = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc_root, name, "stat"), "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            # The process exited after the listing.
            continue
        # The command name in parentheses may contain spaces, so count fields after it: the
        # parent pid is field 4 and the RSS in pages field 24 of proc(5).
        fields = stat[stat.rindex(b")") + 2 :].split()
        child = int(name)
        children.setdefault(int(fields[1]), []).append(child)
        rss_pages[child] = int(fields[21])
    total = 0
    pending = list(children.get(pid, ()))
    while pending:
        process = pending.pop()
        total += rss_pages[process]
        pending.extend(children.get(process, ()))
    return total * os.sysconf("SC_PAGE_SIZE")


def _install_module_recorder(work_dir, env):
    """Put a sitecustomize on PYTHONPATH that writes sys.modules to a file at exit.

    importtime lists failed import attempts too, so the names in sys.modules at exit are the
    only record of what was really loaded. The recorder then imports any sitecustomize that it
    shadows. Returns the path of the file the recorder writes.
    """
    with open(os.path.join(work_dir, "sitecustomize.py"), "w") as recorder:
        recorder.write(MODULE_RECORDER)
    modules_file = os.path.join(work_dir, "modules.txt")
    env[MODULES_FILE_ENV] = modules_file
    env["PYTHONPATH"] = os.pathsep.join(p for p in (work_dir, env.get("PYTHONPATH")) if p)
    return modules_file


def _read_module_list(path):
    """Return the sorted union of module names that every recording process wrote, or None.

    None means that no process wrote the file: a launcher dropped PYTHONPATH, the program
    ended through os._exit, or it ran no Python at all.
    """
    try:
        with open(path) as modules_file:
            names = {line.strip() for line in modules_file if line.strip()}
    except OSError:
        return None
    return sorted(names)


def _failure(phase, outcome):
    failure = {"phase": phase, "kind": outcome["kind"]}
    if outcome["kind"] == "spawn":
        failure["error"] = outcome["error"]
        return failure
    failure["exit_code"] = outcome["exit_code"]
    failure["signal"] = outcome["signal"]
    failure["signal_name"] = _signal_name(outcome["signal"])
    failure["wall_ns"] = outcome["wall_ns"]
    failure["stdout_bytes"] = outcome["stdout_bytes"]
    failure["stderr_bytes"] = outcome["stderr_bytes"]
    failure["stderr_tail"] = outcome["stderr"]
    return failure


def _signal_name(number):
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal {}".format(number)


def _public(variant):
    return {key: value for key, value in variant.items() if key != "name"}


# ---------------------------------------------------------------------------------------------
# Environment and entry point


def describe_environment():
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def measure(spec, runner=run_once, clock=time.perf_counter_ns):
    started = clock()
    environment = describe_environment()
    variants = run_benchmark(spec, runner)
    environment["loadavg_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "harness_version": HARNESS_VERSION,
        "spec": spec,
        "environment": environment,
        "variants": variants,
        "elapsed_ns": clock() - started,
    }


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: startup_harness.py SPEC.json\n")
        return 2
    try:
        with open(argv[1]) as spec_file:
            raw = json.load(spec_file)
    except (OSError, ValueError) as error:
        sys.stderr.write("cannot read harness spec {}: {}\n".format(argv[1], error))
        return 2
    try:
        spec = load_spec(raw)
    except SpecError as error:
        sys.stderr.write("{} (in {})\n".format(error, argv[1]))
        return 2
    json.dump(measure(spec), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
