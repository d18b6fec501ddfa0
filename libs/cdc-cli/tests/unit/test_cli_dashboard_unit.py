"""``cdc dev dashboard`` reads the read API's addresses from the stack description."""

from __future__ import annotations

from pathlib import Path

import orjson
from cdc_cli._app import app
from devstack.verify import STACK_FILE, StackInfo
from typer.testing import CliRunner


def _stack(tmp_path: Path, **api: str) -> Path:
    latest = tmp_path / "latest"
    latest.mkdir()
    StackInfo(bootstrap="127.0.0.1:1", source_dsn="", aws_endpoint_url="", **api).save(
        latest / STACK_FILE
    )
    return tmp_path


def test_it_prints_the_recorded_addresses(tmp_path: Path) -> None:
    work_dir = _stack(
        tmp_path,
        api_url="http://127.0.0.1:8123",
        api_docs_url="http://127.0.0.1:8123/docs",
        dashboard_url="http://127.0.0.1:8123/dashboard#key=k3y",
        api_key="k3y",
    )
    result = CliRunner().invoke(app, ["dev", "dashboard", "--work-dir", str(work_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {
        "api_url": "http://127.0.0.1:8123",
        "api_docs_url": "http://127.0.0.1:8123/docs",
        "dashboard_url": "http://127.0.0.1:8123/dashboard#key=k3y",
        "api_key": "k3y",
    }
    text = CliRunner().invoke(app, ["dev", "dashboard", "--work-dir", str(work_dir)])
    assert "http://127.0.0.1:8123/dashboard#key=k3y" in text.stdout


def test_a_stack_without_the_api_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dev", "dashboard", "--work-dir", str(_stack(tmp_path))])
    assert result.exit_code == 2
    assert "runs no read API" in result.output and "make up" in result.output
