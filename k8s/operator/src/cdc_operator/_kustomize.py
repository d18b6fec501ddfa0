"""A small kustomize renderer for the subset of kustomize that ``k8s/`` uses.

Clusters and users render with ``kubectl kustomize``; this module exists so the tests can render
every overlay without a kustomize binary and validate what would really be applied. Supported:
``resources`` (files and kustomization directories), ``namespace``, ``commonLabels``,
``labels`` (with ``includeSelectors``/``includeTemplates``), ``images``, ``patches`` (strategic
merge patches from a file or inline, and JSON 6902 patches with a ``target``),
``patchesStrategicMerge`` and ``configMapGenerator`` with ``disableNameSuffixHash``. Anything
else raises :class:`KustomizeError` rather than rendering something kustomize would not.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from cdc_operator._errors import OperatorError

Manifest = dict[str, Any]

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SUPPORTED_KEYS = frozenset(
    {
        "apiVersion",
        "kind",
        "resources",
        "namespace",
        "commonLabels",
        "labels",
        "images",
        "patches",
        "patchesStrategicMerge",
        "configMapGenerator",
        "generatorOptions",
    }
)
_CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
    }
)
# Strategic-merge keys of the lists this repository patches (from the Kubernetes API's
# x-kubernetes-patch-merge-key); every other list is replaced by the patch's list.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "env": "name",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
    "tolerations": "key",
}
_WORKLOAD_TEMPLATE_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
    }
)


class KustomizeError(OperatorError):
    """The kustomization uses something this renderer does not support, or is invalid."""


def render_kustomization(path: str | Path) -> list[Manifest]:
    """Render the kustomization in directory ``path`` like ``kubectl kustomize path``."""
    return _render_dir(Path(path).resolve(), stack=())


def dump_manifests(manifests: Iterable[Manifest]) -> str:
    """The manifests as one multi-document YAML stream."""
    return yaml.safe_dump_all(list(manifests), sort_keys=False)


def _kustomization_file(directory: Path) -> Path:
    for name in _KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def _load_yaml_documents(path: Path) -> list[Manifest]:
    with path.open(encoding="utf-8") as handle:
        docs = [d for d in yaml.safe_load_all(handle) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise KustomizeError(f"{path}: every document must be a Kubernetes object")
    return docs


def _render_dir(directory: Path, stack: tuple[Path, ...]) -> list[Manifest]:
    if directory in stack:
        raise KustomizeError(f"{directory}: cycle in resources")
    kfile = _kustomization_file(directory)
    with kfile.open(encoding="utf-8") as handle:
        spec = yaml.safe_load(handle) or {}
    unknown = set(spec) - _SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unknown)}")

    manifests: list[Manifest] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            manifests.extend(_render_dir(target, (*stack, directory)))
        elif target.is_file():
            manifests.extend(_load_yaml_documents(target))
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} does not exist")
    manifests.extend(_generate_config_maps(directory, spec))
    _check_unique(manifests, kfile)

    for patch_path in spec.get("patchesStrategicMerge", []):
        for patch in _load_yaml_documents(directory / patch_path):
            _apply_strategic_patch(manifests, patch, target=None, origin=kfile)
    for entry in spec.get("patches", []):
        _apply_patch_entry(manifests, entry, directory, kfile)

    if "namespace" in spec:
        for manifest in manifests:
            if manifest["kind"] not in _CLUSTER_SCOPED:
                manifest.setdefault("metadata", {})["namespace"] = spec["namespace"]
    if "commonLabels" in spec:
        _add_labels(manifests, spec["commonLabels"], selectors=True, templates=True)
    for group in spec.get("labels", []):
        _add_labels(
            manifests,
            group.get("pairs", {}),
            selectors=bool(group.get("includeSelectors", False)),
            templates=bool(group.get("includeTemplates", group.get("includeSelectors", False))),
        )
    for image in spec.get("images", []):
        _set_image(manifests, image)
    return manifests


def _check_unique(manifests: list[Manifest], origin: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for m in manifests:
        key = (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"{origin}: {key} is declared twice")
        seen.add(key)


def _generate_config_maps(directory: Path, spec: Mapping[str, Any]) -> list[Manifest]:
    options = spec.get("generatorOptions", {})
    out: list[Manifest] = []
    for gen in spec.get("configMapGenerator", []):
        if not options.get("disableNameSuffixHash") and not gen.get("options", {}).get(
            "disableNameSuffixHash"
        ):
            raise KustomizeError(
                f"{directory}: configMapGenerator {gen.get('name')!r} needs "
                "disableNameSuffixHash: true (name hashes are not implemented)"
            )
        data: dict[str, str] = {}
        for item in gen.get("files", []):
            key, _, rel = item.partition("=") if "=" in item else (Path(item).name, "", item)
            data[key] = (directory / rel).read_text(encoding="utf-8")
        for item in gen.get("literals", []):
            key, _, value = item.partition("=")
            data[key] = value
        metadata: Manifest = {"name": gen["name"]}
        if "namespace" in gen:
            metadata["namespace"] = gen["namespace"]
        labels = {**options.get("labels", {}), **gen.get("options", {}).get("labels", {})}
        if labels:
            metadata["labels"] = labels
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    return out


def _matches(manifest: Manifest, target: Mapping[str, Any]) -> bool:
    meta = manifest.get("metadata", {})
    checks = (
        ("kind", manifest.get("kind")),
        ("name", meta.get("name")),
        ("namespace", meta.get("namespace")),
    )
    if any(key in target and target[key] != value for key, value in checks):
        return False
    if "labelSelector" in target:
        labels = meta.get("labels", {})
        for clause in str(target["labelSelector"]).split(","):
            key, _, value = clause.partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
    return True


def _apply_patch_entry(
    manifests: list[Manifest], entry: Mapping[str, Any], directory: Path, origin: Path
) -> None:
    if "path" in entry:
        text = (directory / entry["path"]).read_text(encoding="utf-8")
    elif "patch" in entry:
        text = entry["patch"]
    else:
        raise KustomizeError(f"{origin}: a patch needs `path` or `patch`")
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    target = entry.get("target")
    if len(docs) == 1 and isinstance(docs[0], list):
        if target is None:
            raise KustomizeError(f"{origin}: a JSON 6902 patch needs a target")
        selected = [m for m in manifests if _matches(m, target)]
        if not selected:
            raise KustomizeError(f"{origin}: patch target {target} matches nothing")
        for manifest in selected:
            _apply_json6902(manifest, docs[0], origin)
        return
    for doc in docs:
        if not isinstance(doc, dict):
            raise KustomizeError(f"{origin}: a strategic merge patch must be an object")
        _apply_strategic_patch(manifests, doc, target=target, origin=origin)


def _apply_strategic_patch(
    manifests: list[Manifest],
    patch: Manifest,
    target: Mapping[str, Any] | None,
    origin: Path,
) -> None:
    if target is None:
        meta = patch.get("metadata", {})
        target = {"kind": patch.get("kind"), "name": meta.get("name")}
        if "namespace" in meta:
            target = {**target, "namespace": meta["namespace"]}
    selected = [m for m in manifests if _matches(m, target)]
    if not selected:
        raise KustomizeError(f"{origin}: patch target {dict(target)} matches nothing")
    if patch.get("$patch") == "delete":  # the whole object goes, as kustomize does
        manifests[:] = [m for m in manifests if not any(m is s for s in selected)]
        return
    body = {k: v for k, v in patch.items() if k not in {"apiVersion", "kind", "metadata"}}
    patch_meta = {
        k: v for k, v in patch.get("metadata", {}).items() if k in {"labels", "annotations"}
    }
    for manifest in selected:
        merged = strategic_merge(manifest, body)
        if patch_meta:
            merged["metadata"] = strategic_merge(merged["metadata"], patch_meta)
        manifest.clear()
        manifest.update(merged)


def strategic_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into a copy of ``base`` the way ``kubectl patch --type strategic`` does
    for the fields in ``_MERGE_KEYS``: maps merge, ``null`` deletes a key, lists of objects
    with a merge key merge item by item (an item with ``$patch: delete`` removes it), other
    lists are replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = strategic_merge(out[key], value)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(out.get(key), list):
            out[key] = _merge_list(out[key], value, _MERGE_KEYS[key])
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_list(base: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    merged = copy.deepcopy(base)
    for item in patch:
        if not isinstance(item, Mapping) or merge_key not in item:
            raise KustomizeError(f"list items merged by {merge_key!r} must carry it: {item!r}")
        index = next(
            (i for i, cur in enumerate(merged) if cur.get(merge_key) == item[merge_key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(copy.deepcopy(dict(item)))
        else:
            merged[index] = strategic_merge(merged[index], item)
    return merged


def _apply_json6902(manifest: Manifest, operations: list[Any], origin: Path) -> None:
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = manifest
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                parent[index] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[index]
            else:
                raise KustomizeError(f"{origin}: JSON patch op {kind!r} is not supported")
        elif kind in {"add", "replace"}:
            if kind == "replace" and last not in parent:
                raise KustomizeError(f"{origin}: cannot replace missing {op['path']}")
            parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if last not in parent:
                raise KustomizeError(f"{origin}: cannot remove missing {op['path']}")
            del parent[last]
        else:
            raise KustomizeError(f"{origin}: JSON patch op {kind!r} is not supported")


def _add_labels(
    manifests: list[Manifest], labels: Mapping[str, str], *, selectors: bool, templates: bool
) -> None:
    for manifest in manifests:
        manifest.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        spec = manifest.get("spec")
        if not isinstance(spec, dict):
            continue
        if templates and manifest["kind"] in _WORKLOAD_TEMPLATE_KINDS:
            spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        if selectors:
            if manifest["kind"] == "Service":
                spec.setdefault("selector", {}).update(labels)
            elif manifest["kind"] in _WORKLOAD_TEMPLATE_KINDS | {"PodDisruptionBudget"}:
                spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(labels)


def _set_image(manifests: list[Manifest], image: Mapping[str, Any]) -> None:
    name = image["name"]
    for manifest in manifests:
        pod_spec = _pod_spec(manifest)
        if pod_spec is None:
            continue
        for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
            current = container.get("image", "")
            repo, tag = _split_image(current)
            if repo != name:
                continue
            new_repo = image.get("newName", repo)
            if "digest" in image:
                container["image"] = f"{new_repo}@{image['digest']}"
            else:
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_repo}:{new_tag}" if new_tag else new_repo


def _split_image(image: str) -> tuple[str, str]:
    if "@" in image:
        return image.split("@", 1)[0], ""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = image.rpartition(":")
        return repo, tag
    return image, ""


def _pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    if manifest.get("kind") in _WORKLOAD_TEMPLATE_KINDS:
        spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
        return spec
    if manifest.get("kind") == "CronJob":
        cron: dict[str, Any] = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return cron
    return None
