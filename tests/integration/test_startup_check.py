"""`pants startup-check` on fixture `pex_binary` targets, run by the real Pants."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from .pants_repo import PantsRepo, PantsResult

# numpy 2.0.2 is the last release with wheels for CPython 3.9. The fixture's own Pants resolves
# it from the package index, because the fixture has no lockfile or constraints file.
NUMPY = "numpy==2.0.2"

FILES = {
    "3rdparty/BUILD": f"python_requirement(name='numpy', requirements=['{NUMPY}'])",
    "src/apps/BUILD": (
        "python_sources()\n"
        "pex_binary(name='plain', entry_point='plain.py')\n"
        "pex_binary(name='numeric', entry_point='numeric.py')\n"
        "pex_binary(name='crash', entry_point='crash.py')\n"
    ),
    "src/apps/plain.py": "import json\n\nprint(json.dumps({'ok': True}))\n",
    "src/apps/numeric.py": "import numpy\n\nprint(numpy.zeros(3).sum())\n",
    "src/apps/crash.py": (
        "import sys\n"
        "\n"
        "sys.stderr.write('crash.py: the configuration file settings.ini is missing\\n')\n"
        "sys.exit(3)\n"
    ),
    "src/slow/BUILD": "python_sources()\npex_binary(name='hang', entry_point='hang.py')\n",
    "src/slow/hang.py": "import time\n\ntime.sleep(60)\n",
    "src/reg/BUILD": (
        "python_sources()\n"
        "pex_binary(name='tool', entry_point='tool.py')\n"
        "pex_binary(name='other', entry_point='other.py')\n"
    ),
    "src/reg/tool.py": "print('tool')\n",
    "src/reg/other.py": "print('other')\n",
    "src/count/BUILD": "python_sources()\npex_binary(name='cli', entry_point='cli.py')\n",
    "src/count/cli.py": "import json\n\nprint(json.dumps([1]))\n",
    "src/mem/BUILD": "python_sources()\npex_binary(name='spawner', entry_point='spawner.py')\n",
    # The pex stays small and runs two children at once, each holding 60 MB for half a second.
    "src/mem/spawner.py": (
        "import subprocess\n"
        "import sys\n"
        "\n"
        "CHILD = \"import time; block = b'x' * 60_000_000; time.sleep(0.5)\"\n"
        "children = [subprocess.Popen([sys.executable, '-S', '-c', CHILD]) for _ in range(2)]\n"
        "sys.exit(max(child.wait() for child in children))\n"
    ),
}
# Standard-library modules that the zipapp pex of src/count:cli does not load yet. On CPython
# 3.9 with pex 2.1.148 they add 2.8% to its instruction count, launcher stage included.
IMPORT_REGRESSION = (
    "import ctypes, multiprocessing, sqlite3, unittest, xml.dom.minidom, xml.etree.ElementTree\n"
    "import argparse, logging, json\n"
    "\n"
    "print(json.dumps([1]))\n"
)

# Few runs keep the test fast. Budgets far above any real figure leave only the deterministic
# findings (failures, timeouts, prohibited and added modules) able to fail a binary.
FAST_AND_LOOSE = (
    "--startup-check-warmup=1",
    "--startup-check-min-runs=2",
    "--startup-check-max-runs=2",
    "--startup-check-budget-ms=600000",
    "--startup-check-import-budget-ms=600000",
    "--startup-check-memory-budget-mb=100000",
    "--startup-check-count-instructions=never",
)
BASELINE_DIR = "baselines"
TOOL_BASELINE = f"{BASELINE_DIR}/src.reg@tool.json"
OTHER_BASELINE = f"{BASELINE_DIR}/src.reg@other.json"
CORRUPT_BASELINE = '{"format": 1, "startup": '


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> PantsRepo:
    return PantsRepo.create(tmp_path_factory.mktemp("startup_repo"), FILES, source_roots=["/src"])


@pytest.fixture(scope="module")
def apps_run(repo: PantsRepo) -> PantsResult:
    # NOTE: numpy is named here because the documented default, `[arch-lint].heavy_modules`,
    # does not take effect: Pants turns the option's default of None into an empty list.
    prohibited = "--startup-check-prohibited-modules=['numpy']"
    return repo.run("startup-check", *FAST_AND_LOOSE, prohibited, "src/apps::")


def test_exit_code(apps_run: PantsResult) -> None:
    assert apps_run.exit_code == 1, apps_run.describe()
    assert "startup-check: 3 binaries checked, 2 failed." in apps_run.stderr


def test_prohibited_numpy(apps_run: PantsResult) -> None:
    assert (
        "src/apps:numeric: prohibited-module [critical] startup imports prohibited package numpy"
    ) in apps_run.stdout, apps_run.describe()
    assert "src/apps:numeric: startup check FAILED" in apps_run.stdout


def test_crash_report(apps_run: PantsResult) -> None:
    assert "src/apps:crash: binary-failed [critical] binary exited with status 3" in (
        apps_run.stdout
    ), apps_run.describe()
    assert "crash.py: the configuration file settings.ini is missing" in apps_run.stdout
    assert "src/apps:crash: startup check FAILED" in apps_run.stdout


def test_others_measured(apps_run: PantsResult) -> None:
    assert "src/apps:plain: startup " in apps_run.stdout, apps_run.describe()
    assert "src/apps:plain: startup check passed" in apps_run.stdout


def test_hang_timeout(repo: PantsRepo) -> None:
    result = repo.run(
        "startup-check", *FAST_AND_LOOSE, "--startup-check-timeout=2", "src/slow:hang"
    )

    assert result.exit_code == 1, result.describe()
    assert "src/slow:hang: binary-timeout [critical] binary timed out after" in result.stdout
    assert "src/slow:hang: startup check FAILED" in result.stdout


def test_baseline_regression(repo: PantsRepo) -> None:
    baseline_args = (*FAST_AND_LOOSE, f"--startup-check-baseline-dir={BASELINE_DIR}", "src/reg::")
    record = repo.run("startup-check", "--startup-check-update-baseline", *baseline_args)
    recorded = json.loads(repo.path(TOOL_BASELINE).read_text())
    repo.write({"src/reg/tool.py": "import sqlite3\n\nprint('tool', sqlite3.sqlite_version)\n"})
    repo.path(OTHER_BASELINE).write_text(CORRUPT_BASELINE)

    check = repo.run("startup-check", *baseline_args)

    assert record.exit_code == 0, record.describe()
    assert f"wrote the baseline of src/reg:tool to {TOOL_BASELINE}" in record.stderr
    assert isinstance(recorded, dict)
    assert check.exit_code == 2, check.describe()
    assert "src/reg:tool: startup-modules-added [error] startup now loads" in check.stdout
    assert "sqlite3" in check.stdout
    assert OTHER_BASELINE in check.stderr
    assert "is not valid JSON" in check.stderr
    assert repo.path(OTHER_BASELINE).read_text() == CORRUPT_BASELINE


def test_tree_memory_over_budget(repo: PantsRepo) -> None:
    loose_but_memory = [arg for arg in FAST_AND_LOOSE if "memory-budget" not in arg]
    result = repo.run(
        "startup-check", *loose_but_memory, "--startup-check-memory-budget-mb=100", "src/mem::"
    )

    assert result.exit_code == 1, result.describe()
    assert "src/mem:spawner: peak-memory [error] peak RSS " in result.stdout
    assert "MB summed over the process tree (largest of " in result.stdout
    kernel = re.search(r"peak RSS ([\d.]+) MB in one process, ([\d.]+) MB over the", result.stdout)
    assert kernel is not None, result.stdout
    assert float(kernel.group(1)) < 100
    assert float(kernel.group(2)) > 120


def test_always_without_valgrind(repo: PantsRepo) -> None:
    result = repo.run(
        "startup-check",
        "--startup-check-count-instructions=always",
        "--startup-check-valgrind-search-path=['/nonexistent']",
        "src/reg:tool",
    )

    assert result.exit_code == 2, result.describe()
    assert "`[startup-check].count_instructions` is `always`, but valgrind was not found" in (
        result.stderr
    )


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind on PATH")
def test_instruction_regression_in_zipapp(repo: PantsRepo) -> None:
    # count_instructions is left at its default, `auto`, and valgrind is installed.
    counted = [arg for arg in FAST_AND_LOOSE if "count-instructions" not in arg]
    baseline_args = (*counted, f"--startup-check-baseline-dir={BASELINE_DIR}", "src/count:cli")
    record = repo.run("startup-check", "--startup-check-update-baseline", *baseline_args)
    recorded = json.loads(repo.path(f"{BASELINE_DIR}/src.count@cli.json").read_text())
    repo.write({"src/count/cli.py": IMPORT_REGRESSION})

    check = repo.run("startup-check", *baseline_args)

    assert record.exit_code == 0, record.describe()
    assert " M instructions" in record.stdout
    assert recorded["startup"]["instruction_counter"] == "callgrind"
    assert recorded["startup"]["instructions"] > 0
    assert check.exit_code == 1, check.describe()
    assert "src/count:cli: startup-instructions [error] startup runs " in check.stdout
    assert "more instructions than the stored baseline" in check.stdout
