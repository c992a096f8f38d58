"""The `startup-check` subcommand: measure one command's startup and check it.

    python -m perfguard startup-check [options] -- CMD...

Exit status: 0 when no finding blocks, 1 when one does, 2 for invalid input (raised as a
StartupCheckError, which `perfguard.cli` reports as a message).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
from typing import Any, Optional, TextIO

from perfguard.startup.baseline import build_baseline, read_baseline, write_baseline
from perfguard.startup.budgets import DEFAULT_HEAVY_MODULES, Budgets, evaluate
from perfguard.startup.clock import Clock, SystemClock
from perfguard.startup.errors import InvalidSpec
from perfguard.startup.html import write_html
from perfguard.startup.measure import HarnessRunner, SubprocessHarnessRunner
from perfguard.startup.results import HarnessSpec

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_BLOCKING = 1


def add_subcommand(subparsers: Any) -> None:
    """Add the `startup-check` parser to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "startup-check",
        help="Measure how fast a command starts and check it against budgets.",
        description="Measure how fast a command starts and check it against budgets.",
    )
    parser.add_argument(
        "--name",
        help="Name of the binary in findings and the baseline. " "Defaults to the command line.",
    )
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=500.0,
        help="Startup time budget in milliseconds (default 500).",
    )
    parser.add_argument(
        "--import-budget-ms",
        type=float,
        default=100.0,
        help="Budget for the own import time of one package, in milliseconds " "(default 100).",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=float,
        default=100.0,
        help="Peak RSS budget in megabytes of 10^6 bytes (default 100).",
    )
    parser.add_argument(
        "--max-heavy-imports",
        type=int,
        default=3,
        help="How many heavy packages startup may load (default 3).",
    )
    parser.add_argument(
        "--prohibit",
        action="append",
        metavar="PACKAGE",
        help="Package that startup must not import; repeat for several. "
        f"Defaults to {', '.join(DEFAULT_HEAVY_MODULES)}.",
    )

    parser.add_argument("--baseline", metavar="FILE", help="Baseline JSON file to compare with.")
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="If set, write the measurement to --baseline instead of " "comparing with it.",
    )
    parser.add_argument(
        "--candidate",
        metavar="CMD",
        help="Second command, as one shell-quoted string, to compare with CMD "
        "in interleaved A/B runs.",
    )
    parser.add_argument(
        "--count-instructions",
        action="store_true",
        help="If set, also count each variant's instructions in one run under "
        "valgrind's callgrind, every process and exec stage included (tens of times "
        "slower than a normal run); with --candidate, more than 2%% growth blocks.",
    )
    parser.add_argument("--html", metavar="FILE", help="Also write an HTML import chart here.")

    parser.add_argument("--warmup", type=int, default=2, help="Warm-up runs (default 2).")
    parser.add_argument("--min-runs", type=int, default=7, help="Minimum timed runs (default 7).")
    parser.add_argument(
        "--max-runs", type=int, default=40, help="Maximum timed runs " "(default 40)."
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=30.0,
        help="Time-out for one run, in seconds (default 30).",
    )
    parser.add_argument(
        "--python", help="Interpreter that runs the harness. Defaults to the " "current one."
    )

    parser.add_argument(
        "cmd",
        nargs=argparse.REMAINDER,
        metavar="-- CMD...",
        help="The command to measure, after `--`.",
    )
    parser.set_defaults(run=run)


# `perfguard.cli` calls `register`; both names are kept for callers written against either.
register = add_subcommand


def run(
    args: argparse.Namespace,
    runner: Optional[HarnessRunner] = None,
    clock: Optional[Clock] = None,
    output: Optional[TextIO] = None,
) -> int:
    """Measure, evaluate and print the report; return the exit status."""
    output = output or sys.stdout
    clock = clock or SystemClock()
    command = list(args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd)
    if not command:
        raise InvalidSpec(
            "startup-check: missing command; pass it after `--`, for example "
            "`startup-check -- python app.pex`"
        )
    if args.update_baseline and not args.baseline:
        raise InvalidSpec("startup-check: --update-baseline needs --baseline FILE")

    name = args.name or shlex.join(command)
    prohibited = tuple(args.prohibit) if args.prohibit is not None else DEFAULT_HEAVY_MODULES
    budgets = Budgets(
        startup_ms=args.budget_ms,
        single_import_ms=args.import_budget_ms,
        peak_memory_mb=args.memory_budget_mb,
        max_heavy_imports=args.max_heavy_imports,
    )
    spec = HarnessSpec.build(
        command,
        candidate_command=shlex.split(args.candidate) if args.candidate else None,
        warmup=args.warmup,
        min_runs=args.min_runs,
        max_runs=args.max_runs,
        timeout_s=args.timeout_s,
        valgrind=_find_valgrind() if args.count_instructions else None,
    )

    # The baseline is read first, so that a missing or corrupt file fails before measuring.
    stored = None
    if args.baseline and not args.update_baseline:
        stored = read_baseline(args.baseline, binary=name)
    runner = runner or SubprocessHarnessRunner(python=args.python, clock=clock)
    result = runner.run(spec)
    report = evaluate(result, budgets, prohibited, stored, binary=name)

    output.write(report.format_text() + "\n")
    if args.update_baseline and not result.measured.failures:
        write_baseline(args.baseline, build_baseline(name, result, budgets.heavy_modules, clock))
        output.write(f"Wrote startup baseline for {name} to {args.baseline}.\n")
    elif args.update_baseline:
        output.write(f"Did not write the baseline {args.baseline}, because {name} failed.\n")
    if args.html:
        write_html(args.html, [report])
        output.write(f"Wrote import chart to {args.html}.\n")
    return EXIT_BLOCKING if report.blocking else EXIT_OK


def _find_valgrind() -> str:
    path = shutil.which("valgrind")
    if path is None:
        raise InvalidSpec(
            "startup-check: --count-instructions needs valgrind on PATH; install "
            "it (for example `apt-get install valgrind`) or drop the option"
        )
    return path
