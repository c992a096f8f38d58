"""Benchmark `arch-lint` on sympy's `sympy/` package next to CPython's parser and peer tools.

Usage: python3 bench/arch_lint/run_bench.py [--work DIR] [--python PYTHON] [--skip-pylint]

In one run, on one copy of sympy 1.14.0 from PyPI, the script times:

* the floor: `ast.parse` over the same files in one process, and split over two processes;
* `arch-lint ::` cold (`--no-pantsd`, fresh local store and named caches) and `list ::` cold
  with the same kind of fresh caches, which is the engine's own cold cost;
* with pantsd running: `arch-lint ::` again with no change, `list ::`, `dependencies ::`, and
  `arch-lint ::` and `list ::` after adding a module-level assignment to one file (three files,
  one at a time);
* Ruff with the type-checking-import (TC) and banned-module-level-import (TID253) rules, cold
  (`--no-cache`) and warm;
* import-linter with an acyclic-siblings and an independence contract (`--no-cache`);
* pylint's `cyclic-import` check alone.

Everything it downloads or builds (the sdist, the fixture repository, a virtualenv with the
pinned tools, Pants caches) goes under `--work`, which must be outside this repository. The
fixture's pants.toml loads this repository's backend through absolute `pythonpath` entries and
runs Pants through this repository's `./pants` bootstrap. The results go to
`WORK/results.json` and, as a Markdown table with ratios to the one-process floor, to stdout.

Timings on a shared machine vary from run to run, so the script records the load average
before and after each step. Ratios measured in one run are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
SYMPY_VERSION = "1.14.0"
TOOLS = ("ruff==0.17.6", "import-linter==2.17", "pylint==4.1.5")
HEAVY_MODULES = ("mpmath", "numpy", "scipy")
PROTOCOL_GLOB = "sympy/core/*.py"
EDITED_FILES = ("sympy/core/add.py", "sympy/polys/polytools.py", "sympy/printing/latex.py")
WARM_REPEATS = 3

PANTS_TOML = """\
[GLOBAL]
pants_version = "2.17.1"
pythonpath = ["{repo}/pants-plugins", "{repo}/src"]
backend_packages = ["pants.backend.python", "perfguard_pants"]
ignore_warnings = [
  "$regex$Running Pants from a virtualenv",
  "$regex$The `pants` launcher binary is now the approved way",
]

[source]
root_patterns = ["/"]

[python]
interpreter_constraints = ["CPython=={python_version}.*"]

[python-infer]
use_rust_parser = true
unowned_dependency_behavior = "ignore"

{pex_cli_section}
[arch-lint]
protocol_globs = ["{protocol_glob}"]
heavy_modules = {heavy_modules}
"""

ROOT_BUILD_FILE = """\
python_requirement(name="mpmath", requirements=["mpmath==1.3.0"])
"""
# One target generator per folder, as `pants tailor` writes them. With one generator globbing
# all of `sympy/**`, an edit to any file invalidates every generated target.
FOLDER_BUILD_FILE = """\
python_sources(sources=["*.py"])
"""

RUFF_TOML = """\
[lint]
select = ["TC", "TID253"]

[lint.flake8-tidy-imports]
banned-module-level-imports = {heavy_modules}
"""

IMPORTLINTER_CONFIG = """\
[importlinter]
root_package = sympy

[importlinter:contract:acyclic]
name = Subpackages of sympy import each other without cycles
type = acyclic_siblings
ancestors = sympy

[importlinter:contract:independence]
name = sympy.polys and sympy.printing are independent
type = independence
modules =
    sympy.polys
    sympy.printing
"""

FLOOR_SCRIPT = """\
import ast, sys, time
paths = [line for line in open(sys.argv[1]).read().splitlines() if line]
start = time.perf_counter()
for path in paths:
    with open(path, "rb") as source:
        ast.parse(source.read(), filename=path)
print(time.perf_counter() - start)
"""


def main(argv: Sequence[str]) -> int:
    args = _parse_args(argv)
    work = Path(args.work).resolve()
    if work == REPO or REPO in work.parents:
        sys.exit(f"--work {work} is inside the repository; choose a folder outside {REPO}.")
    work.mkdir(parents=True, exist_ok=True)
    python = args.python or _find_python("3.11")
    fixture = _prepare_fixture(work, python)
    tools = _prepare_tools(work, python)
    results: Dict[str, object] = {"machine": _machine_facts(python), "steps": {}}
    steps: Dict[str, object] = results["steps"]  # type: ignore[assignment]

    files = sorted(str(path.relative_to(fixture)) for path in (fixture / "sympy").rglob("*.py"))
    results["files"] = len(files)
    results["lines"] = sum(len((fixture / path).read_bytes().splitlines()) for path in files)
    steps["ast_parse_1_process"] = _floor(python, fixture, [files], work)
    steps["ast_parse_2_processes"] = _floor(python, fixture, [files[0::2], files[1::2]], work)
    steps["arch_lint_cold"] = _pants_cold(fixture, work, ["arch-lint", "::"])
    steps["list_cold"] = _pants_cold(fixture, work, ["list", "::"])
    steps.update(_pants_warm(fixture))
    steps.update(_peer_tools(fixture, tools, work, skip_pylint=args.skip_pylint))

    (work / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(_render_table(results))
    return 0


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work",
        default=os.path.join(tempfile.gettempdir(), "perfguard-arch-lint-bench"),
        help="Scratch folder outside the repository for downloads, caches and results.",
    )
    parser.add_argument(
        "--python", default=None, help="Interpreter for the fixture and tools (CPython 3.11)."
    )
    parser.add_argument("--skip-pylint", action="store_true", help="If set, do not run pylint.")
    return parser.parse_args(argv)


def _find_python(version: str) -> str:
    found = shutil.which(f"python{version}")
    if found:
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}")):
        return str(candidate)
    sys.exit(f"Python {version} was not found on PATH or in pyenv; pass --python.")


def _run(
    argv: Sequence[str], *, cwd: Path, env: Optional[Dict[str, str]] = None, check: bool = True
) -> "subprocess.CompletedProcess[str]":
    completed = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and completed.returncode != 0:
        sys.exit(
            f"{' '.join(argv)} failed with exit code {completed.returncode}:\n"
            f"{completed.stderr[-3000:]}"
        )
    return completed


def _prepare_fixture(work: Path, python: str) -> Path:
    fixture = work / "fixture"
    if (fixture / "sympy" / "BUILD").exists():
        (fixture / "pants.toml").write_text(_pants_toml(python))
        return fixture
    shutil.rmtree(fixture, ignore_errors=True)
    downloads = work / "downloads"
    sdist = downloads / f"sympy-{SYMPY_VERSION}.tar.gz"
    if not sdist.exists():
        _run(
            [
                sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                f"sympy=={SYMPY_VERSION}", "-d", str(downloads),
            ],
            cwd=work,
        )
    if not (work / "sdist" / f"sympy-{SYMPY_VERSION}").exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(work / "sdist")

    fixture.mkdir()
    shutil.copytree(work / "sdist" / f"sympy-{SYMPY_VERSION}" / "sympy", fixture / "sympy")
    (fixture / "pants.toml").write_text(_pants_toml(python))
    (fixture / "BUILD").write_text(ROOT_BUILD_FILE)
    for folder in sorted({path.parent for path in (fixture / "sympy").rglob("*.py")}):
        (folder / "BUILD").write_text(FOLDER_BUILD_FILE)
    (fixture / ".importlinter").write_text(IMPORTLINTER_CONFIG)
    (fixture / ".gitignore").write_text("/.pants.d/\n/.pids/\n")

    _run(["git", "init", "-q", "."], cwd=fixture)
    _run(["git", "add", "-A"], cwd=fixture)
    _run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "x"],
        cwd=fixture,
    )
    return fixture


def _pants_toml(python: str) -> str:
    version = _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], cwd=REPO)
    return PANTS_TOML.format(
        repo=REPO,
        python_version=version.stdout.strip(),
        protocol_glob=PROTOCOL_GLOB,
        heavy_modules=json.dumps(list(HEAVY_MODULES)),
        pex_cli_section=_pex_cli_section(),
    )


def _pex_cli_section() -> str:
    """Return this repository's `[pex-cli]` section, which points at the CLI ./pants builds."""
    text = (REPO / "pants.toml").read_text()
    start = text.index("[pex-cli]")
    end = text.find("\n[", start)
    return text[start:] if end < 0 else text[start : end + 1]


def _prepare_tools(work: Path, python: str) -> Path:
    venv = work / "tools-venv"
    if not (venv / "bin" / "pylint").exists():
        _run([python, "-m", "venv", str(venv)], cwd=work)
        _run([str(venv / "bin" / "pip"), "install", "-q", *TOOLS], cwd=work)
    (work / "ruff.toml").write_text(RUFF_TOML.format(heavy_modules=json.dumps(HEAVY_MODULES)))
    return venv


def _machine_facts(python: str) -> Dict[str, object]:
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    nproc = _run(["nproc"], cwd=REPO, check=False).stdout.strip()
    version = _run([python, "--version"], cwd=REPO).stdout.strip()
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": version,
        "tools": list(TOOLS),
    }


def _timed(argv: Sequence[str], *, cwd: Path, env: Optional[Dict[str, str]] = None) -> Dict:
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    completed = _run(argv, cwd=cwd, env=env, check=False)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "exit_code": completed.returncode,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "stdout_tail": completed.stdout[-400:],
        "stderr_tail": completed.stderr[-400:],
    }


def _floor(python: str, fixture: Path, shards: List[List[str]], work: Path) -> Dict:
    script = work / "floor.py"
    script.write_text(FLOOR_SCRIPT)
    lists = []
    for index, shard in enumerate(shards):
        path = work / f"floor-files-{index}.txt"
        path.write_text("\n".join(shard) + "\n")
        lists.append(path)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    children = [
        subprocess.Popen(
            [python, str(script), str(path)], cwd=fixture, stdout=subprocess.PIPE, text=True
        )
        for path in lists
    ]
    inside = [float(child.communicate()[0]) for child in children]
    return {
        "seconds": round(time.perf_counter() - start, 2),
        "parse_seconds_per_process": [round(value, 2) for value in inside],
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _pants(fixture: Path, args: Sequence[str], env: Optional[Dict[str, str]] = None) -> Dict:
    return _timed([str(REPO / "pants"), *args], cwd=fixture, env=env)


def _stop_pantsd(fixture: Path) -> None:
    # pantsd does not watch the backend's sources outside the fixture, so each run starts a
    # fresh one to load the current code.
    for pid_file in fixture.glob(".pids/*/pantsd/pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), 15)
        except (ValueError, ProcessLookupError):
            pass
    time.sleep(2)


def _pants_cold(fixture: Path, work: Path, args: Sequence[str]) -> Dict:
    _stop_pantsd(fixture)
    caches = Path(tempfile.mkdtemp(prefix="cold-", dir=work))
    shutil.rmtree(fixture / ".pants.d", ignore_errors=True)
    env = dict(os.environ)
    env["PANTS_LOCAL_STORE_DIR"] = str(caches / "lmdb_store")
    env["PANTS_NAMED_CACHES_DIR"] = str(caches / "named_caches")
    result = _pants(fixture, ["--no-pantsd", *args], env=env)
    shutil.rmtree(caches, ignore_errors=True)
    return result


def _median_of(runs: List[Dict]) -> Dict:
    return {
        "seconds": round(statistics.median(run["seconds"] for run in runs), 2),
        "runs": [run["seconds"] for run in runs],
        "exit_codes": [run["exit_code"] for run in runs],
        "load_before": [run["load_before"] for run in runs],
    }


def _pants_warm(fixture: Path) -> Dict[str, Dict]:
    _stop_pantsd(fixture)
    steps: Dict[str, Dict] = {"arch_lint_pantsd_start": _pants(fixture, ["arch-lint", "::"])}
    _pants(fixture, ["list", "::"])
    _pants(fixture, ["dependencies", "::"])
    steps["arch_lint_warm_noop"] = _median_of(
        [_pants(fixture, ["arch-lint", "::"]) for _ in range(WARM_REPEATS)]
    )
    steps["list_warm_noop"] = _median_of(
        [_pants(fixture, ["list", "::"]) for _ in range(WARM_REPEATS)]
    )
    steps["dependencies_warm_noop"] = _median_of(
        [_pants(fixture, ["dependencies", "::"]) for _ in range(WARM_REPEATS)]
    )
    steps["arch_lint_warm_one_file_changed"] = _median_of(_edited_runs(fixture, ["arch-lint", "::"]))
    steps["list_warm_one_file_changed"] = _median_of(_edited_runs(fixture, ["list", "::"]))
    _stop_pantsd(fixture)
    return steps


def _edited_runs(fixture: Path, args: Sequence[str]) -> List[Dict]:
    """Time `args` once after each of EDITED_FILES gains a module-level assignment.

    The assignment changes what the probe reports about the file, so arch-lint's combined
    result is computed again, as after a real edit. After each timed run the file is restored
    and `args` runs once untimed, so the next timed run starts from one changed file only.
    """
    runs = []
    for path in EDITED_FILES:
        original = (fixture / path).read_bytes()
        edit = f"\n_perfguard_bench_edit = {time.time_ns()}\n".encode()
        (fixture / path).write_bytes(original + edit)
        try:
            runs.append(_pants(fixture, args))
        finally:
            (fixture / path).write_bytes(original)
        _pants(fixture, args)
    return runs


def _peer_tools(fixture: Path, venv: Path, work: Path, *, skip_pylint: bool) -> Dict[str, Dict]:
    bin_dir = venv / "bin"
    ruff = [str(bin_dir / "ruff"), "check", "--config", str(work / "ruff.toml"), "--exit-zero"]
    env = dict(os.environ, PYTHONPATH=str(fixture))
    steps = {
        "ruff_cold": _timed([*ruff, "--no-cache", "sympy"], cwd=fixture),
        "import_linter_cold": _timed(
            [str(bin_dir / "lint-imports"), "--no-cache"], cwd=fixture, env=env
        ),
    }
    _timed([*ruff, "sympy"], cwd=fixture)
    steps["ruff_warm"] = _timed([*ruff, "sympy"], cwd=fixture)
    if not skip_pylint:
        steps["pylint_cyclic_import"] = _timed(
            [
                str(bin_dir / "pylint"), "--disable=all", "--enable=cyclic-import",
                "--persistent=n", "--jobs=1", "--exit-zero", "sympy",
            ],
            cwd=fixture,
            env=env,
        )
    return steps


def _render_table(results: Dict) -> str:
    steps = results["steps"]
    floor = steps["ast_parse_1_process"]["seconds"]
    lines = [
        f"sympy {SYMPY_VERSION}: {results['files']} files, {results['lines']} lines. "
        f"Machine: {results['machine']['nproc']} CPUs, {results['machine']['cpu_model']}.",
        "",
        "| step | seconds | ratio to floor | load average before |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, step in steps.items():
        load = step["load_before"]
        load_text = ", ".join(str(v) for v in load) if isinstance(load, list) else str(load)
        lines.append(f"| {name} | {step['seconds']} | {step['seconds'] / floor:.2f} | {load_text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
