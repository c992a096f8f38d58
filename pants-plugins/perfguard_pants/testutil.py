"""Settings that tests need to run real Pants rules offline, in one place.

RuleRunner does not read pants.toml, so tests pass its [pex-cli] section themselves; Pants would
otherwise download the pex CLI from GitHub. The digest and size are those of the reproducible
pex 2.1.148 CLI that ./pants builds and exports as PERFGUARD_PEX_CLI.
"""

from __future__ import annotations

import os
from typing import Dict, List

import pytest
from pants.backend.python import register as python_register
from pants.core import register as core_register
from pants.testutil.rule_runner import RuleRunner

from perfguard_pants import register

PEX_CLI_VERSION = "v2.1.148"
PEX_CLI_SHA256 = "6c5818cc43a15fa76429e0cc8150a811eda257154ed617c07a071553818befca"
PEX_CLI_SIZE = 3614753
PEX_CLI_PLATFORMS = ("linux_x86_64", "linux_arm64", "macos_x86_64", "macos_arm64")

# Interpreter discovery needs these, and pyenv's interpreters are found through PYENV_ROOT.
ENV_INHERIT = {"PATH", "PYENV_ROOT", "HOME"}
# Set by ./pants when a global pip configuration sets a constraints file, which crashes pex.
PIP_WORKAROUND_VARS = ("PANTS_SUBPROCESS_ENVIRONMENT_ENV_VARS",)


def pex_cli_known_versions() -> List[str]:
    return [
        f"{PEX_CLI_VERSION}|{platform}|{PEX_CLI_SHA256}|{PEX_CLI_SIZE}"
        for platform in PEX_CLI_PLATFORMS
    ]


def pex_cli_args() -> List[str]:
    """Return the `--pex-cli-*` options, skipping the test when ./pants did not start it."""
    pex_cli = os.environ.get("PERFGUARD_PEX_CLI")
    if not pex_cli:
        pytest.skip("PERFGUARD_PEX_CLI is not set: run the tests through ./pants.")
    return [
        f"--pex-cli-version={PEX_CLI_VERSION}",
        f"--pex-cli-known-versions={pex_cli_known_versions()!r}",
        f"--pex-cli-url-template=file://{pex_cli}",
    ]


def pip_workaround_env() -> Dict[str, str]:
    return {name: os.environ[name] for name in PIP_WORKAROUND_VARS if name in os.environ}


def new_rule_runner() -> RuleRunner:
    """Create a RuleRunner with the core, Python and perfguard rules and target types."""
    return RuleRunner(
        rules=[*core_register.rules(), *python_register.rules(), *register.rules()],
        target_types=[*core_register.target_types(), *python_register.target_types()],
        ca_certs_path=os.environ.get("PANTS_CA_CERTS_PATH"),
    )
