"""Command-line entry point: `python -m perfguard SUBCOMMAND ...`.

Each subcommand lives in its own module, listed in SUBCOMMAND_MODULES. That module defines
`register(subparsers) -> None`, which adds its parser to the argparse subparsers object and
calls `set_defaults(run=handler)` with `handler(args: argparse.Namespace) -> int` returning the
exit code. A listed module that is not installed is left out of the command line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Dict, List, Optional, Sequence

from perfguard.errors import PerfguardError

logger = logging.getLogger(__name__)

EXIT_USAGE = 2

SUBCOMMAND_MODULES: Dict[str, str] = {
    "arch-lint": "perfguard.archlint.command",
    "startup-check": "perfguard.startup.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfguard", description="Keep Python code fast to import."
    )
    parser.add_argument(
        "--debug", action="store_true", help="If set, log debug details and show tracebacks."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, module_name in SUBCOMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is None or not module_name.startswith(e.name):
                raise
            logger.debug("Subcommand %s is not available: %s is not installed.", name, e.name)
            continue
        module.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments: List[str] = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except PerfguardError as e:
        if args.debug:
            raise
        print(f"perfguard {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
