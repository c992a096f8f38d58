"""The `arch-lint` subcommand: probe the .py files under source roots and report findings."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Dict, List, Sequence, Tuple

from perfguard.archlint.baseline import (
    apply_baseline,
    build_baseline,
    read_baseline,
    write_baseline,
)
from perfguard.archlint.config import (
    DEFAULT_CLASS_LINE_LIMIT,
    DEFAULT_HEAVY_MODULES,
    DEFAULT_INTROSPECTED_CLASSES,
    ArchLintConfig,
)
from perfguard.archlint.costs import find_cost_requests, measure_costs
from perfguard.archlint.output import EXIT_OK, exit_code_for, render_json, render_text
from perfguard.archlint.probe import ProbeInput, run_probe
from perfguard.archlint.rules import analyze
from perfguard.errors import InvalidConfiguration

logger = logging.getLogger(__name__)

_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules"})


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "arch-lint",
        help="Check imports, cycles and class sizes of Python source trees.",
        description="Check imports, cycles and class sizes of the .py files under each ROOT.",
    )
    parser.add_argument("roots", nargs="+", metavar="ROOT", help="A source root folder.")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="Interpreter that parses the sources (default: the one running perfguard).",
    )

    parser.add_argument(
        "--heavy",
        action="append",
        metavar="MODULE",
        help=f"A heavy module. Repeat for more. Default: {', '.join(DEFAULT_HEAVY_MODULES)}.",
    )
    parser.add_argument(
        "--protocol-glob",
        action="append",
        default=[],
        metavar="GLOB",
        help="Path glob of protocol files, like `**/protocols.py`. Repeat for more.",
    )
    parser.add_argument(
        "--introspected-class",
        action="append",
        metavar="NAME",
        help=(
            "Dotted name of a base class or class decorator that reads annotations at class "
            f"creation. Repeat for more. Default: {', '.join(DEFAULT_INTROSPECTED_CLASSES)}."
        ),
    )
    parser.add_argument(
        "--class-line-limit",
        type=int,
        default=DEFAULT_CLASS_LINE_LIMIT,
        help="Maximum number of lines in a class before `god-object` reports it.",
    )

    parser.add_argument(
        "--severity",
        action="append",
        default=[],
        metavar="RULE=SEVERITY",
        help="Override a rule's severity (critical, error, warning, info). Repeat for more.",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="RULE:TARGET",
        help="Accept findings of RULE in files matching a path glob or in a module.",
    )
    parser.add_argument(
        "--focus",
        action="append",
        default=None,
        metavar="PATH",
        help="Report only findings in these files and cycles through them. Repeat for more.",
    )

    parser.add_argument(
        "--measure-costs",
        action="store_true",
        help=(
            "If set, import each heavy module that findings name with --python, in fresh "
            "processes, and report its import time and memory."
        ),
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--baseline", metavar="FILE", help="JSON baseline of accepted findings.")
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="If set, write all current findings to --baseline and exit 0.",
    )
    parser.set_defaults(run=run_arch_lint)


def run_arch_lint(args: argparse.Namespace) -> int:
    if args.update_baseline and not args.baseline:
        raise InvalidConfiguration(["--update-baseline needs --baseline FILE."])
    config = ArchLintConfig.from_options(
        heavy_modules=args.heavy,
        protocol_globs=args.protocol_glob,
        class_line_limit=args.class_line_limit,
        severities=_parse_severities(args.severity),
        allowed_exceptions=args.allow,
        introspected_classes=args.introspected_class,
    )
    inputs = discover_sources(args.roots)
    probe_result = run_probe(args.python, inputs, introspected_classes=config.introspected_classes)
    result = analyze(probe_result.files, config, focus_paths=args.focus)
    if args.measure_costs:
        modules = [request.module for request in find_cost_requests(result)]
        costs = measure_costs(args.python, modules)
        result = analyze(probe_result.files, config, focus_paths=args.focus, module_costs=costs)
    if args.update_baseline:
        write_baseline(args.baseline, build_baseline(result.findings))
        print(f"Wrote {len(result.findings)} findings to the baseline {args.baseline}.")
        return EXIT_OK
    baseline_result = None
    if args.baseline:
        baseline_result = apply_baseline(result.findings, read_baseline(args.baseline))
    render = render_json if args.format == "json" else render_text
    sys.stdout.write(render(result, baseline_result))
    findings = result.findings if baseline_result is None else baseline_result.new
    return exit_code_for(findings)


def discover_sources(roots: Sequence[str]) -> List[ProbeInput]:
    """Find .py files under each root, naming modules relative to that root.

    Hidden folders and __pycache__ are skipped. A module found under two roots keeps the first.

    Raises:
        InvalidConfiguration: a root is not a folder.
    """
    missing = [f"ROOT {root!r} is not a folder." for root in roots if not os.path.isdir(root)]
    if missing:
        raise InvalidConfiguration(missing)
    inputs: Dict[str, ProbeInput] = {}
    for root in roots:
        for path, module, is_package in _walk_root(root):
            if module in inputs:
                logger.warning(
                    "Skipping %s: module %s is already %s.", path, module, inputs[module].path
                )
                continue
            inputs[module] = ProbeInput(path=path, module=module, is_package=is_package)
    return sorted(inputs.values(), key=lambda item: item.path)


def _walk_root(root: str) -> List[Tuple[str, str, bool]]:
    found = []
    for folder, subfolders, filenames in os.walk(root):
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and name not in _SKIPPED_FOLDERS
        )
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = os.path.normpath(os.path.join(folder, filename))
            parts = os.path.relpath(path, root).split(os.sep)
            parts[-1] = parts[-1][: -len(".py")]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            if not parts:
                logger.warning(
                    "Skipping %s: a source root's own __init__.py has no module name.", path
                )
                continue
            found.append((path, ".".join(parts), is_package))
    return found


def _parse_severities(values: Sequence[str]) -> Dict[str, str]:
    severities: Dict[str, str] = {}
    problems = []
    for value in values:
        rule_id, separator, severity = value.partition("=")
        if not separator:
            problems.append(f"--severity {value!r} is invalid. Write RULE=SEVERITY.")
        else:
            severities[rule_id.strip()] = severity.strip()
    if problems:
        raise InvalidConfiguration(problems)
    return severities
