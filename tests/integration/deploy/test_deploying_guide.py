"""k8s/DEPLOYING.md, the path from a new AWS account to a running platform, checked step by step
against the repository: its steps in order, every file and directory it names, every
`terraform output` it (or a manifest) asks for, every kustomization it applies, every option of
the deploy script it uses, and every placeholder it says to replace."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cdc_operator import render_kustomization

from .conftest import ROOT

GUIDE = ROOT / "k8s" / "DEPLOYING.md"
TEXT = GUIDE.read_text()
ENVS = ("staging", "prod")


def test_the_steps_are_numbered_in_order() -> None:
    steps = [int(n) for n in re.findall(r"^## (\d+)\. ", TEXT, flags=re.MULTILINE)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 6


@pytest.mark.parametrize(
    "path",
    sorted(
        set(
            re.findall(
                r"(?<![\w/.-])((?:k8s|terraform|scripts|services|libs|docker)/[\w./-]*\w)", TEXT
            )
        )
    ),
)
def test_every_path_it_names_exists(path: str) -> None:
    target = ROOT / path.replace("<service>", "search-indexer")
    assert target.exists(), f"{GUIDE.name} names {path}, which is not in the repository"


def _outputs(env: str) -> set[str]:
    text = (ROOT / "terraform" / "envs" / env / "outputs.tf").read_text()
    return set(re.findall(r'^output "([a-z_]+)"', text, flags=re.MULTILINE))


def test_every_terraform_output_asked_for_exists_in_every_environment() -> None:
    sources = [GUIDE, *ROOT.glob("k8s/**/*.yaml"), ROOT / "terraform" / "README.md"]
    asked = {
        name
        for path in sources
        for name in re.findall(r"terraform output (?:-raw |-json )?([a-z_]+)", path.read_text())
    }
    assert {"ecr_registry", "postgres_master_secret_arn"} <= asked
    for env in ENVS:
        assert asked <= _outputs(env), f"envs/{env} lacks {sorted(asked - _outputs(env))}"


@pytest.mark.parametrize("directory", sorted(set(re.findall(r"kubectl apply -k ([\w/.-]+)", TEXT))))
def test_every_kustomization_it_applies_renders(directory: str) -> None:
    assert (ROOT / directory / "kustomization.yaml").exists(), directory
    assert render_kustomization(ROOT / directory), directory


def test_every_file_it_applies_exists() -> None:
    files = re.findall(r"kubectl apply -f ((?:k8s|deploy)/[\w/.-]+)", TEXT)
    assert files
    for path in files:
        assert (ROOT / path).is_file(), path


def test_the_deploy_script_accepts_every_option_it_uses() -> None:
    usage = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy-consumers.sh"), "--help"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    used = set(re.findall(r"deploy-consumers\.sh[^\n`]*", TEXT))
    options = {o for line in used for o in re.findall(r"(--[a-z-]+)", line)}
    assert {"--env", "--dry-run", "--services", "--tag", "--skip-build"} <= options
    for option in options:
        assert option in usage, f"the guide uses {option}, the script's --help does not list it"


@pytest.mark.parametrize(
    ("placeholder", "file"),
    [
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com", "k8s/platform/kafka-connect.yaml"),
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com", "k8s/operator/deploy/deployment.yaml"),
        ("rds-master-secret-name", "k8s/base/db/credentials.yaml"),
    ],
)
def test_the_placeholders_it_says_to_replace_are_where_it_says(placeholder: str, file: str) -> None:
    assert placeholder in (ROOT / file).read_text()
    assert file in TEXT or Path(file).name in TEXT
