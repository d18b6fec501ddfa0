"""The promises the README makes about the repository itself."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
from pathlib import Path

import pytest

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


# -- services: one descriptor each, the same entry point, a README that maps the folder -------

SERVICE_DIRS = sorted(
    p.parent
    for p in [*ROOT.glob("services/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]
)
# The consumers publish a descriptor (the ``cdc.services`` entry point); a service that is not a
# consumer (the query API) has the same README and purity rules but its own entry point.
CONSUMER_DIRS = [
    d
    for d in SERVICE_DIRS
    if '[project.entry-points."cdc.services"]' in (d / "pyproject.toml").read_text()
]
MAIN_LINES = ["import sys", "", "from {pkg}.service import SERVICE", "", "sys.exit(SERVICE.run())"]
# READMEs rewritten on another branch: their layout table is added when it is merged.
LAYOUT_PENDING: set[str] = set()


def _package(service_dir: Path) -> Path:
    (package,) = (p for p in (service_dir / "src").iterdir() if p.is_dir() and "." not in p.name)
    return package


def test_only_the_query_api_and_its_example_client_are_not_consumers() -> None:
    not_consumers = {d.name for d in SERVICE_DIRS} - {d.name for d in CONSUMER_DIRS}
    assert not_consumers == {"query-api", "query-api-client"}


@pytest.mark.parametrize("service_dir", CONSUMER_DIRS, ids=lambda p: p.name)
def test_every_service_publishes_a_descriptor_that_agrees_with_its_settings(
    service_dir: Path,
) -> None:
    from consumer_runtime import services

    descriptor = services()[service_dir.name]
    settings_default = descriptor.settings.model_fields["kafka_topics"].default
    assert descriptor.topics == tuple(settings_default)
    package = _package(service_dir).name
    assert type(descriptor).__module__ == "consumer_runtime._descriptor"
    for ref in (descriptor.verifier, descriptor.commands, descriptor.dlq_commands):
        if ref is not None:
            assert ref.startswith(f"{package}."), ref
            assert callable(descriptor.load(ref)), ref


@pytest.mark.parametrize("service_dir", CONSUMER_DIRS, ids=lambda p: p.name)
def test_every_main_is_the_same_three_lines(service_dir: Path) -> None:
    package = _package(service_dir)
    tree = ast.parse((package / "__main__.py").read_text())
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    code = ast.unparse(ast.Module(body=body, type_ignores=[])).splitlines()
    expected = [line.format(pkg=package.name) for line in MAIN_LINES if line]
    assert code == expected


def _layout_modules(readme: str) -> list[str]:
    sections = re.split(r"^## ", readme, flags=re.M)
    intro, first = sections[0], sections[1] if len(sections) > 1 else ""
    assert first.startswith("Layout\n"), "the first section is ## Layout"
    assert "```" not in intro and "|" not in intro, "only the title and prose come before it"
    modules: list[str] = []
    for line in first.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            modules += re.findall(r"`((?:\w+/)*\w+\.py)`", cells[1])
    return modules


def _package_modules(package: Path) -> list[str]:
    """The package's modules, a subpackage's by their path in it (``store/_writer.py``); the
    Alembic revisions under ``migrations/`` are the schema's history, not modules of the table."""
    return [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.relative_to(package).parts[0] != "migrations"
    ]


@pytest.mark.parametrize("service_dir", SERVICE_DIRS, ids=lambda p: p.name)
def test_every_readme_opens_with_a_layout_table_of_its_modules(service_dir: Path) -> None:
    if service_dir.name in LAYOUT_PENDING:
        pytest.skip("README being rewritten on main; its layout table comes with the merge")
    modules = _layout_modules((service_dir / "README.md").read_text())
    assert len(modules) == len(set(modules)), "one row per module"
    assert sorted(modules) == sorted(_package_modules(_package(service_dir)))


def _pure_contract_modules() -> set[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    section = config["importlinter:contract:domains-are-pure"]
    return set(section["source_modules"].split())


@pytest.mark.parametrize("service_dir", SERVICE_DIRS, ids=lambda p: p.name)
def test_every_module_a_readme_calls_pure_is_in_the_purity_contract(service_dir: Path) -> None:
    """A layout row whose job starts with "pure" names a module the import-linter contract
    ``domains-are-pure`` checks: the README's word is enforced, not only written."""
    package = _package(service_dir).name
    readme = (service_dir / "README.md").read_text()
    first = re.split(r"^## ", readme, flags=re.M)[1]
    pure = []
    for line in first.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if line.startswith("|") and len(cells) > 3 and cells[2].startswith("pure"):
            for path in re.findall(r"`((?:\w+/)*\w+)\.py`", cells[1]):
                pure.append(f"{package}." + path.replace("/", "."))
    contract = _pure_contract_modules()
    assert not [m for m in pure if m not in contract], "add them to domains-are-pure"
    if service_dir.parent.name == "services":
        assert pure, "a service has pure modules (its domain at least)"
