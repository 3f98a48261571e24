"""Credentials for kopf and for our own client, from one place.

In a pod we use the service environment (KUBERNETES_SERVICE_HOST/PORT) rather than kopf's default
`https://kubernetes.default.svc`, which needs cluster DNS (bare clusters and some locked-down ones have
none). Bound service-account tokens rotate, so the token is read from its file each time we log in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kopf

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster() -> kopf.ConnectionInfo | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    token = SA_DIR / "token"
    if not host or not token.exists():
        return None
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    namespace = (SA_DIR / "namespace").read_text().strip() if (SA_DIR / "namespace").exists() else None
    return kopf.ConnectionInfo(
        server=server, ca_path=str(SA_DIR / "ca.crt"), token=token.read_text().strip(), default_namespace=namespace
    )


def connection_info(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    return in_cluster() or kopf.login_with_kubeconfig(settings=settings)


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    return connection_info(settings)
