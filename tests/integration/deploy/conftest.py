"""Shared paths and the one-per-session checkov runner for the deployment tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
UV = ROOT / ".tools" / "bin" / "uv"
# checkov has a large dependency tree that conflicts with the workspace's: it runs from its own
# pinned tool environment, which uv builds on first use and keeps in its cache.
CHECKOV_SPEC = "checkov==3.3.30"
SERVICES = ("event-store-writer", "stats-aggregator", "search-indexer", "analytics-flusher")
# The read API: deployed with the consumers (same image recipe, namespace, deploy script), but
# no Kafka client, so it is not in SERVICES.
API = "query-api"
DEPLOYED = (*SERVICES, API)


def api_landed() -> bool:
    """Whether services/query-api is in the tree: the checks of its code (settings names, AWS
    calls, workspace libraries) apply only then; its deployment is checked either way."""
    return (ROOT / "services" / API / "pyproject.toml").is_file()


def needs_api() -> None:
    """Skip the calling test while services/query-api has not landed."""
    if not api_landed():
        pytest.skip("services/query-api is not in the tree yet")


def _uv() -> str:
    found = str(UV) if UV.exists() else shutil.which("uv")
    if not found:
        pytest.skip("uv is not installed: run `make venv` first")
    return found


@pytest.fixture(scope="session")
def checkov() -> Callable[..., dict[str, Any]]:
    """``checkov(directory, framework)``: the parsed JSON report; failures are the caller's."""
    uv = _uv()
    env = dict(os.environ)
    probe = subprocess.run(
        [uv, "tool", "run", "--from", CHECKOV_SPEC, "checkov", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(
            f"cannot install {CHECKOV_SPEC} (no package index reachable?): "
            f"{probe.stderr.strip()[-500:]}"
        )

    def run(directory: Path, framework: str, config: Path) -> dict[str, Any]:
        proc = subprocess.run(
            [
                uv,
                "tool",
                "run",
                "--from",
                CHECKOV_SPEC,
                "checkov",
                "--compact",
                "-o",
                "json",
                "-d",
                str(directory),
                "--framework",
                framework,
                "--config-file",
                str(config),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"checkov failed: {proc.stderr[-2000:]}") from None
        reports = report if isinstance(report, list) else [report]
        failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
        passed = sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)
        return {"failed": failed, "passed": passed}

    return run
