"""The kustomize-subset renderer on small kustomizations built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cdc_operator import KustomizeError, render_kustomization, strategic_merge

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "app", "labels": {"app": "app"}},
    "spec": {
        "selector": {"matchLabels": {"app": "app"}},
        "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {
                "containers": [
                    {"name": "app", "image": "repo/app:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "repo/side:1"},
                ]
            },
        },
    },
}


def _write(path: Path, data: object, *, many: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump_all(data) if many else yaml.safe_dump(data)  # type: ignore[arg-type]
    path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _write(tmp_path / "base/deployment.yaml", DEPLOYMENT)
    _write(tmp_path / "base/cm.txt", {})
    (tmp_path / "base/cm.txt").write_text("hello")
    _write(
        tmp_path / "base/kustomization.yaml",
        {
            "resources": ["deployment.yaml"],
            "namespace": "ns",
            "labels": [{"pairs": {"team": "cdc"}}],
            "generatorOptions": {"disableNameSuffixHash": True},
            "configMapGenerator": [{"name": "files", "files": ["cm.txt"], "literals": ["K=V"]}],
        },
    )
    _write(
        tmp_path / "overlay/patch.yaml",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "app"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "env": [{"name": "B", "value": "2"}]},
                        ]
                    }
                }
            },
        },
    )
    _write(
        tmp_path / "overlay/kustomization.yaml",
        {
            "resources": ["../base"],
            "commonLabels": {"env": "prod"},
            "images": [{"name": "repo/app", "newName": "ecr/app", "newTag": "sha"}],
            "patches": [
                {"path": "patch.yaml"},
                {
                    "target": {"kind": "Deployment", "name": "app"},
                    "patch": yaml.safe_dump(
                        [
                            {
                                "op": "add",
                                "path": "/spec/template/spec/containers/1/args",
                                "value": ["-v"],
                            },
                        ]
                    ),
                },
            ],
        },
    )
    return tmp_path


def test_overlay_renders_like_kustomize(tree: Path) -> None:
    out = {m["kind"]: m for m in render_kustomization(tree / "overlay")}
    dep = out["Deployment"]
    assert dep["metadata"]["namespace"] == "ns"
    assert dep["metadata"]["labels"] == {"app": "app", "team": "cdc", "env": "prod"}
    # `labels` without includeSelectors leaves selectors alone; commonLabels changes them.
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "app", "env": "prod"}
    app, side = dep["spec"]["template"]["spec"]["containers"]
    assert app["image"] == "ecr/app:sha"
    assert side["image"] == "repo/side:1"
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert side["args"] == ["-v"]
    assert out["ConfigMap"]["data"] == {"cm.txt": "hello", "K": "V"}
    assert out["ConfigMap"]["metadata"]["namespace"] == "ns"


def test_strategic_merge_deletes_and_replaces() -> None:
    base = {
        "a": {"b": 1, "c": 2},
        "args": ["x"],
        "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}],
    }
    patch = {"a": {"b": None}, "args": ["y"], "volumes": [{"name": "v1", "$patch": "delete"}]}
    assert strategic_merge(base, patch) == {
        "a": {"c": 2},
        "args": ["y"],
        "volumes": [{"name": "v2", "emptyDir": {}}],
    }


def test_unsupported_fields_fail_loudly(tmp_path: Path) -> None:
    _write(tmp_path / "kustomization.yaml", {"helmCharts": [{"name": "x"}]})
    with pytest.raises(KustomizeError, match="unsupported"):
        render_kustomization(tmp_path)


def test_patch_without_a_target_fails(tree: Path) -> None:
    _write(
        tree / "overlay/patch.yaml",
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nope"}},
    )
    with pytest.raises(KustomizeError, match="matches nothing"):
        render_kustomization(tree / "overlay")


def test_hashed_generators_are_refused(tree: Path) -> None:
    k = yaml.safe_load((tree / "base/kustomization.yaml").read_text())
    del k["generatorOptions"]
    _write(tree / "base/kustomization.yaml", k)
    with pytest.raises(KustomizeError, match="disableNameSuffixHash"):
        render_kustomization(tree / "base")


def test_a_delete_patch_removes_the_object(tree: Path) -> None:
    """`$patch: delete` at the top of a strategic merge patch drops the object (the local
    overlay drops the database credentials it has no Secrets Manager for)."""
    overlay = tree / "drop"
    _write(
        overlay / "kustomization.yaml",
        {
            "resources": ["../base"],
            "patches": [
                {
                    "patch": yaml.safe_dump(
                        {
                            "$patch": "delete",
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "metadata": {"name": "app", "namespace": "ns"},
                        }
                    )
                }
            ],
        },
    )
    kinds = [m["kind"] for m in render_kustomization(overlay)]
    assert kinds == ["ConfigMap"]
