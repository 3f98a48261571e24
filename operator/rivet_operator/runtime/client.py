"""The API calls the controller makes, on the `kubernetes_asyncio` client (its config loading, TLS, auth and
token refresh) with raw JSON bodies: responses are read with `_preload_content=False` and parsed as dicts,
so no generated model is built per call. Every request is counted (per verb) for metrics and benchmarks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio import client as k8s

from rivet_operator import GROUP, VERSION
from rivet_operator.runtime import metrics

MERGE_PATCH = "application/merge-patch+json"


def plural_of(kind: str) -> str:
    """Our kinds' plurals: RivetExport -> rivetexports."""
    return kind.lower() + "s"


PAGE = 500


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Kube:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api
        self.core = k8s.CoreV1Api(api)
        self.batch = k8s.BatchV1Api(api)
        self.custom = k8s.CustomObjectsApi(api)
        self.requests: Counter[str] = Counter()

    async def close(self) -> None:
        await self.api.close()

    async def _call(self, verb: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        self.requests[verb] += 1
        metrics.API_REQUESTS.labels(verb).inc()
        resp = await fn(*args, _preload_content=False, **kw)
        try:
            text = await resp.text()
            status = int(resp.status)
        finally:
            resp.release()
        if status >= 400:
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise ApiError(status, str(message)[:500])
        return json.loads(text) if text else None

    async def _list(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            extra = {"_continue": token} if token else {}
            page = await self._call("list", fn, *args, limit=PAGE, **kw, **extra)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    # -- our resources ------------------------------------------------------------------------------
    async def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = await self._call(
                "get", self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
            return obj
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list_custom(
        self, plural: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        extra = {"label_selector": selector} if selector else {}
        if namespace:
            return await self._list(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, **extra
            )
        return await self._list(self.custom.list_cluster_custom_object, GROUP, VERSION, plural, **extra)

    async def patch_status(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self._call(
            "patch",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": patch},
            _content_type=MERGE_PATCH,
        )
        return out

    # -- what we create -----------------------------------------------------------------------------
    async def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await self._list(self.batch.list_namespaced_job, namespace, label_selector=selector)

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await self._list(self.core.list_namespaced_pod, namespace, label_selector=selector)

    async def list_configmaps(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return await self._list(self.core.list_namespaced_config_map, namespace, label_selector=selector)

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a Job, ConfigMap or Event; raises ApiError (409 included)."""
        kind = body["kind"]
        fns: dict[str, Callable[..., Awaitable[Any]]] = {
            "Job": self.batch.create_namespaced_job,
            "ConfigMap": self.core.create_namespaced_config_map,
            "Event": self.core.create_namespaced_event,
        }
        if str(body.get("apiVersion", "")).startswith(GROUP + "/"):  # one of our kinds (a schedule's exports)
            out: dict[str, Any] = await self._call(
                "create", self.custom.create_namespaced_custom_object, GROUP, VERSION, namespace, plural_of(kind), body
            )
            return out
        out = await self._call("create", fns[kind], namespace, body)
        return out

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind not in ("Job", "ConfigMap"):
            return await self.get_custom(plural_of(kind), namespace, name)
        fn = {"Job": self.batch.read_namespaced_job, "ConfigMap": self.core.read_namespaced_config_map}[kind]
        try:
            out: dict[str, Any] = await self._call("get", fn, name, namespace)
            return out
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Update a repeated Event's count and last time (merge patch; no read needed)."""
        await self._call("patch", self.core.patch_namespaced_event, name, namespace, patch, _content_type=MERGE_PATCH)

    async def replace_configmap(self, namespace: str, body: dict[str, Any]) -> None:
        """Replace whatever holds this ConfigMap's name with `body` (an unconditional update: no
        resourceVersion, so keys another writer added go too)."""
        await self._call("replace", self.core.replace_namespaced_config_map, body["metadata"]["name"], namespace, body)

    async def delete(self, plural: str, namespace: str, name: str) -> None:
        """Delete (Background propagation: a Job goes at once, the garbage collector takes its pods)."""
        try:
            if plural.startswith("rivet"):  # one of our kinds (a schedule's runs)
                await self._call(
                    "delete",
                    self.custom.delete_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    name,
                    propagation_policy="Background",
                )
                return
            fn = {"jobs": self.batch.delete_namespaced_job, "configmaps": self.core.delete_namespaced_config_map}[
                plural
            ]
            await self._call("delete", fn, name, namespace, propagation_policy="Background")
        except ApiError as exc:
            if exc.status != 404:
                raise
