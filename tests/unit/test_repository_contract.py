"""The promises the README makes about the repository itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None
    assert text.index("```bash") < text.index("## "), "the commands come before any section"
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make up", "make test"]


def test_ci_runs_the_readme_test_command_and_lint() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", script, re.M)
    assert re.search(r"^make lint\b", script, re.M)
    assert 'exit "$status"' in script


def test_make_help_documents_the_main_targets() -> None:
    out = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in ("up", "test", "lint", "bench", "venv"):
        assert re.search(rf"^\s+(\x1b\[\d+m)?{target}\b", out, re.M), target


def test_top_level_layout() -> None:
    for name in (
        "services",
        "libs",
        "k8s",
        "terraform",
        "scripts",
        "Makefile",
        "README.md",
        "uv.lock",
        ".importlinter",
    ):
        assert (ROOT / name).exists(), name
