"""The run ledger: commit records kept in ConfigMaps, sharded so 10,000 chunks stay far below object limits.

A record is ~300 bytes; 1,000 per shard keeps each ConfigMap near 300 KiB (limit 1 MiB). The operator
writes a chunk's record here *before* deleting its finished Job, so a restart never loses a commit.
"""

from __future__ import annotations

import json
from typing import Any

from rivet_operator import builders, names
from rivet_operator.kube import Kube, ns_path

SHARD_SIZE = 1000


def shard_of(chunk: int) -> int:
    return (chunk - 1) // SHARD_SIZE


def shard_count(total_chunks: int) -> int:
    return 0 if total_chunks <= 0 else shard_of(total_chunks) + 1


def record_key(chunk: int) -> str:
    return f"chunk-{chunk:06d}.json"


def parse(configmaps: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """All records of a run, by chunk index (pure)."""
    out: dict[int, dict[str, Any]] = {}
    for cm in configmaps:
        for key, value in (cm.get("data") or {}).items():
            if key.startswith("chunk-") and key.endswith(".json"):
                try:
                    out[int(key[6:-5])] = json.loads(value)
                except (ValueError, TypeError):
                    continue
    return out


async def read(kube: Kube, namespace: str, owner_label: str, owner: str, run_id: str) -> dict[int, dict[str, Any]]:
    selector = f"{owner_label}={owner[:63]},{names.L_RUN}={names.run_key(run_id)},{names.L_COMPONENT}=ledger"
    return parse(await kube.list(ns_path(namespace, "configmaps"), selector))


async def write(kube: Kube, owner: builders.Owner, run_id: str, chunk: int, record: dict[str, Any]) -> None:
    """Idempotent: create the shard with this record, or merge the record into the existing shard."""
    shard = shard_of(chunk)
    name = names.ledger_shard(owner.name, run_id, shard)
    data = {record_key(chunk): json.dumps(record, separators=(",", ":"), default=str)}
    labels = names.labels(names.L_EXPORT, owner.name, run_id, "ledger")
    created = await kube.create(
        ns_path(owner.namespace, "configmaps"), builders.ledger_shard(owner, name, labels, data)
    )
    if not created:
        await kube.merge_patch(ns_path(owner.namespace, "configmaps", name), {"data": data})
