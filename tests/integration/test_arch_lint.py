"""`pants arch-lint` on a fixture repository where every rule fires, run by the real Pants."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from .pants_repo import PantsRepo, PantsResult

GOD_OBJECT_METHODS = "".join(
    f"    def method_{i}(self) -> int:\n        return {i}\n" for i in range(20)
)

FILES = {
    "src/app/BUILD": "python_sources()",
    "src/app/__init__.py": "",
    # heavy-import: a protocol file imports a heavy module at runtime.
    "src/app/protocols.py": "import numpy\n\n\nclass Model:\n    weights: numpy.ndarray\n",
    # transitive-heavy-import: protocols -> loader -> frames -> pandas.
    "src/app/ports/BUILD": "python_sources()",
    "src/app/ports/__init__.py": "",
    "src/app/ports/protocols.py": "from app.adapters import loader\n\nLOADER = loader\n",
    "src/app/adapters/BUILD": "python_sources()",
    "src/app/adapters/__init__.py": "",
    "src/app/adapters/loader.py": "from app.adapters import frames\n\nFRAMES = frames\n",
    "src/app/adapters/frames.py": "import pandas\n\nDataFrame = pandas.DataFrame\n",
    # An import-time cycle. orders.py also evaluates a TYPE_CHECKING-only name at runtime.
    "src/app/cycle/BUILD": "python_sources()",
    "src/app/cycle/__init__.py": "",
    "src/app/cycle/orders.py": (
        "from typing import TYPE_CHECKING\n"
        "\n"
        "from app.cycle import customers\n"
        "\n"
        "if TYPE_CHECKING:\n"
        "    from decimal import Decimal\n"
        "\n"
        "\n"
        "class Order(Decimal):\n"
        "    owner = customers\n"
    ),
    "src/app/cycle/customers.py": "from app.cycle import orders\n\nORDERS = orders\n",
    # A cycle that closes only through a TYPE_CHECKING import, so it never runs.
    "src/app/typed/BUILD": "python_sources()",
    "src/app/typed/__init__.py": "",
    "src/app/typed/invoice.py": (
        "from __future__ import annotations\n"
        "\n"
        "from typing import TYPE_CHECKING\n"
        "\n"
        "if TYPE_CHECKING:\n"
        "    from app.typed.ledger import Ledger\n"
        "\n"
        "\n"
        "class Invoice:\n"
        "    ledger: Ledger\n"
    ),
    "src/app/typed/ledger.py": (
        "from app.typed.invoice import Invoice\n\n\nclass Ledger(Invoice):\n    pass\n"
    ),
    # god-object: 41 lines against a limit of 30.
    "src/app/big.py": f"class Everything:\n{GOD_OBJECT_METHODS}",
    "src/app/broken.py": "def broken(:\n    pass\n",
    # Python 3.12 syntax, analysed under a 3.12 interpreter.
    "src/modern/BUILD": "python_sources(interpreter_constraints=['CPython==3.12.*'])",
    "src/modern/__init__.py": "",
    "src/modern/protocols.py": (
        "import torch\n"
        "\n"
        "type Tensor = torch.Tensor\n"
        "\n"
        "\n"
        "class Box[T]:\n"
        "    item: T\n"
    ),
    # One heavy module imported under two interpreters, measured once in each.
    "src/envs/old/BUILD": "python_sources()",
    "src/envs/old/protocols.py": "import asyncio\n",
    "src/envs/new/BUILD": "python_sources(interpreter_constraints=['CPython==3.12.*'])",
    "src/envs/new/protocols.py": "import asyncio\n",
    "src/clean/BUILD": "python_sources()",
    "src/clean/__init__.py": "",
    "src/clean/util.py": "import json\n\nDUMPS = json.dumps\n",
}

CONFIG = """\
[arch-lint]
protocol_globs = ["**/protocols.py"]
class_line_limit = 30
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> PantsRepo:
    return PantsRepo.create(tmp_path_factory.mktemp("arch_lint_repo"), FILES, config=CONFIG)


@pytest.fixture(scope="module")
def json_run(repo: PantsRepo) -> PantsResult:
    return repo.run("arch-lint", "--arch-lint-output-format=json", "src/app::")


def _findings(result: PantsResult) -> List[Dict[str, Any]]:
    report = json.loads(result.stdout)
    findings: List[Dict[str, Any]] = report["findings"]
    return findings


def _by_path(result: PantsResult) -> Dict[str, List[Dict[str, Any]]]:
    grouped: Dict[str, List[Dict[str, Any]]] = {}
    for finding in _findings(result):
        grouped.setdefault(finding["path"], []).append(finding)
    return grouped


def _rule_ids(findings: List[Dict[str, Any]]) -> List[str]:
    return sorted(finding["rule_id"] for finding in findings)


def test_json_report(json_run: PantsResult) -> None:
    app_files = [path for path in FILES if path.startswith("src/app/") and path.endswith(".py")]

    assert json_run.exit_code == 1, json_run.describe()
    report = json.loads(json_run.stdout)
    assert report["schema_version"] == 1
    assert report["blocking"] is True
    assert report["files_analyzed"] == len(app_files)


def test_every_rule_fires(json_run: PantsResult) -> None:
    by_path = _by_path(json_run)

    assert _rule_ids(by_path["src/app/protocols.py"]) == ["heavy-import"], json_run.describe()
    assert "'numpy'" in by_path["src/app/protocols.py"][0]["message"]
    assert _rule_ids(by_path["src/app/ports/protocols.py"]) == ["transitive-heavy-import"]
    assert "'pandas'" in by_path["src/app/ports/protocols.py"][0]["message"]
    assert "src/app/adapters/frames.py:1 imports pandas" in (
        by_path["src/app/ports/protocols.py"][0]["message"]
    )
    assert "guarded-name-at-runtime" in _rule_ids(by_path["src/app/cycle/orders.py"])
    assert _rule_ids(by_path["src/app/big.py"]) == ["god-object"]
    assert _rule_ids(by_path["src/app/broken.py"]) == ["parse-error"]


def test_guarded_name(json_run: PantsResult) -> None:
    (finding,) = [
        finding
        for finding in _by_path(json_run)["src/app/cycle/orders.py"]
        if finding["rule_id"] == "guarded-name-at-runtime"
    ]

    assert finding["line"] == 9
    assert "'Decimal'" in finding["message"]
    assert finding["severity"] == "error"


def test_cycles(json_run: PantsResult) -> None:
    cycles = {
        finding["message"]: finding
        for finding in _findings(json_run)
        if finding["rule_id"] == "import-cycle"
    }
    import_time = "import-time import cycle: src/app/cycle/customers.py -> src/app/cycle/orders.py"
    typing = "typing import cycle: src/app/typed/invoice.py -> src/app/typed/ledger.py"

    assert any(message.startswith(import_time) for message in cycles), json_run.describe()
    assert any(message.startswith(typing) for message in cycles), json_run.describe()
    severities = {message.split(":")[0]: finding["severity"] for message, finding in cycles.items()}
    assert severities["import-time import cycle"] == "critical"
    assert severities["typing import cycle"] == "info"


# The 3.12 target's file uses `type X = ...` syntax, which only a 3.12 parser accepts.
def test_python312_target(repo: PantsRepo) -> None:
    result = repo.run("arch-lint", "src/modern::")

    assert result.exit_code == 1, result.describe()
    assert "src/modern/protocols.py:1: heavy-import [critical]" in result.stdout
    assert "'torch'" in result.stdout
    assert "parse-error" not in result.stdout


def test_costs_per_environment(repo: PantsRepo) -> None:
    result = repo.run(
        "arch-lint",
        "--arch-lint-heavy-modules=['asyncio']",
        "--arch-lint-cost-runs=1",
        "--arch-lint-output-format=json",
        "src/envs::",
    )

    assert result.exit_code == 1, result.stderr
    costs = {finding["path"]: finding["cost"] for finding in _findings(result)}
    assert "Python 3.9." in costs["src/envs/old/protocols.py"]["note"]
    assert "(CPython==3.9.*)" in costs["src/envs/old/protocols.py"]["note"]
    assert "Python 3.12." in costs["src/envs/new/protocols.py"]["note"]
    assert "(CPython==3.12.*)" in costs["src/envs/new/protocols.py"]["note"]
    report = json.loads(result.stdout)
    assert report["measured_cost_ms"] == max(cost["ms"] for cost in costs.values())


def test_non_blocking_targets(repo: PantsRepo) -> None:
    result = repo.run("arch-lint", "src/clean::", "src/app/typed::")

    assert result.exit_code == 0, result.describe()
    assert (
        "src/app/typed/invoice.py:6: import-cycle [info] typing import cycle: "
        "src/app/typed/invoice.py -> src/app/typed/ledger.py -> src/app/typed/invoice.py"
    ) in result.stdout
    assert "arch-lint: 1 findings in 5 files" in result.stdout


def test_invalid_option(repo: PantsRepo) -> None:
    result = repo.run("arch-lint", "--arch-lint-severities={'god-object': 'loud'}", "src/clean::")

    assert result.exit_code == 2, result.describe()
    assert "'loud'" in result.stderr


def test_changed_since(repo: PantsRepo) -> None:
    orders = repo.path("src/app/cycle/orders.py")
    orders.write_text(orders.read_text() + "# Edited after the commit.\n")

    result = repo.run("arch-lint", "--changed-since=HEAD")
    repo.git("checkout", "--", "src/app/cycle/orders.py")

    assert result.exit_code == 1, result.describe()
    assert "src/app/cycle/orders.py:9: guarded-name-at-runtime" in result.stdout
    assert "import-time import cycle: src/app/cycle/customers.py" in result.stdout
    assert "src/app/protocols.py" not in result.stdout
    assert "src/app/big.py" not in result.stdout
    assert "src/app/broken.py" not in result.stdout
    assert "typing import cycle" not in result.stdout


def test_changed_dependents(repo: PantsRepo) -> None:
    frames = repo.path("src/app/adapters/frames.py")
    frames.write_text(frames.read_text() + "# Edited after the commit.\n")

    plain = repo.run("arch-lint", "--changed-since=HEAD")
    dependents = repo.run("arch-lint", "--changed-since=HEAD", "--changed-dependents=transitive")
    repo.git("checkout", "--", "src/app/adapters/frames.py")

    assert plain.exit_code == 0, plain.describe()
    assert "transitive-heavy-import" not in plain.stdout
    assert dependents.exit_code == 1, dependents.describe()
    assert "src/app/ports/protocols.py:1: transitive-heavy-import [error]" in dependents.stdout
