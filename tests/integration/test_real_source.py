"""`pants arch-lint` on the source of sqlmodel, downloaded from the package index at test time."""

from __future__ import annotations

import shutil

import pytest

from .pants_repo import PantsRepo, download_sdist

# sqlmodel's main.py imports sqlalchemy at module level, so marking it as a protocol file must
# give a heavy-import finding. The 0.0.14 and 0.0.16 sdists report version 0 in their metadata,
# which current pip rejects.
PROJECT = "sqlmodel"
VERSION = "0.0.22"

BUILD = """\
python_sources(
    sources=["sqlmodel/**/*.py"],
    overrides={"sqlmodel/main.py": {"arch_lint_protocol": True}},
)
"""


def test_sqlmodel_protocol(tmp_path_factory: pytest.TempPathFactory) -> None:
    repo = PantsRepo.create(
        tmp_path_factory.mktemp("sqlmodel_repo"), {"vendor/BUILD": BUILD}, source_roots=["/vendor"]
    )
    unpacked = download_sdist(PROJECT, VERSION, tmp_path_factory.mktemp("sdist"))
    shutil.copytree(unpacked / "sqlmodel", repo.path("vendor/sqlmodel"))
    repo.commit("Add sqlmodel")
    python_files = sorted(repo.path("vendor").rglob("*.py"))

    result = repo.run("arch-lint", "vendor::")

    assert result.exit_code == 1, result.describe()
    assert (
        "vendor/sqlmodel/main.py:30: heavy-import [critical] protocol file imports heavy module "
        "'sqlalchemy' at import time"
    ) in result.stdout
    assert "parse-error" not in result.stdout
    assert f"findings in {len(python_files)} files" in result.stdout
