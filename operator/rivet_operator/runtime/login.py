"""Credentials for kopf and for our own client, from one place: `kubernetes_asyncio`'s loaders.

In a pod: the service environment (KUBERNETES_SERVICE_HOST/PORT, not `kubernetes.default.svc`, which needs
cluster DNS) and the service account token, re-read as it rotates; elsewhere: the kubeconfig.
"""

from __future__ import annotations

import os
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config


async def api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """In a pod: the service account; elsewhere `kubeconfig`, else $KUBECONFIG, else ~/.kube/config."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig:
            raise k8s_config.ConfigException("a kubeconfig was named")
        k8s_config.load_incluster_config(client_configuration=configuration, try_refresh_token=True)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        await k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
    return k8s.ApiClient(configuration)


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return await kopf.login_via_async_client(**kwargs)
