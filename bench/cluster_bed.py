"""What the operator benchmarks share: the test bed's cluster, PostgreSQL and SeaweedFS on the bridge
address, the two Secrets an export reads and an export spec writing to that S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import TESTBED_JSON, Cluster
from tests.e2e.test_operator import s3_export, secrets_for
from tests.fixtures.databases import DbServer, start_postgres
from tests.fixtures.objectstores import S3Server, start_seaweedfs

REPO = Path(__file__).resolve().parents[1]


def bed() -> tuple[dict[str, Any], Cluster, DbServer, S3Server]:
    """The test bed's facts and cluster (CRDs applied), with PostgreSQL and SeaweedFS started where pods
    reach them. The caller stops the servers."""
    info = json.loads(TESTBED_JSON.read_text())
    cluster = Cluster(info["kubeconfig"], info["image"], info["host_address"], info["kubectl"], "Never", True)
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    return info, cluster, start_postgres(host=info["host_address"]), start_seaweedfs(host=info["host_address"])


def stop(pg: DbServer, s3: S3Server) -> None:
    if s3.process:
        s3.process.stop()
    pg.stop()


def create_secrets(cluster: Cluster, ns: str, pg: DbServer, s3: S3Server) -> None:
    """`src` (key url: the database URL) and `lake` (the S3 keys), as the e2e tests create them."""
    secrets_for(cluster, ns, pg.url, s3)


def export_spec(s3: S3Server, bucket: str, table: str, prefix: str, **fields: Any) -> dict[str, Any]:
    """The e2e tests' chunked PostgreSQL export of `table` to `bucket` on the bed's S3; `fields` override."""
    spec: dict[str, Any] = s3_export("bench", table, s3, bucket, prefix, **fields)["spec"]
    return spec
