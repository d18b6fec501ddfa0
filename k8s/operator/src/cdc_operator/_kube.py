"""The operator's view of the Kubernetes API: a small Protocol and its client-based
implementation. Handlers receive a ``ClusterApi``, so tests hand in an in-memory fake."""

from __future__ import annotations

from typing import Any, Protocol

from cdc_operator._errors import OperatorError


class KubeApiError(OperatorError):
    """A Kubernetes API call failed (other than "not found")."""


class ClusterApi(Protocol):
    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create_deployment(self, namespace: str, body: dict[str, Any]) -> None: ...

    def patch_deployment(self, namespace: str, name: str, body: dict[str, Any]) -> None: ...

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None: ...


class KubernetesApi:
    """``ClusterApi`` over the official client, configured in-cluster or from kubeconfig."""

    def __init__(self) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        self._client = client
        self._apps = client.AppsV1Api()
        self._serializer = client.ApiClient()

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self._apps.read_namespaced_deployment(name, namespace)
        except self._client.ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeApiError(f"read deployment {namespace}/{name}: {exc.reason}") from exc
        data: dict[str, Any] = self._serializer.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return data

    def create_deployment(self, namespace: str, body: dict[str, Any]) -> None:
        try:
            self._apps.create_namespaced_deployment(namespace, body)  # type: ignore[arg-type]
        except self._client.ApiException as exc:
            raise KubeApiError(f"create deployment in {namespace}: {exc.reason}") from exc

    def patch_deployment(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        try:
            self._apps.patch_namespaced_deployment(name, namespace, body)
        except self._client.ApiException as exc:
            raise KubeApiError(f"patch deployment {namespace}/{name}: {exc.reason}") from exc

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        try:
            self._apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}
            )
        except self._client.ApiException as exc:
            raise KubeApiError(f"scale deployment {namespace}/{name}: {exc.reason}") from exc
