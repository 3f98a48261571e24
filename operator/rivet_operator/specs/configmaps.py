"""ConfigMaps (pure): a run's rendered rivet.yaml, and the ledger shards of its commit records.

The ledger: commit records kept in ConfigMaps, sharded so 10,000 chunks stay far below object limits. A
record is ~300 bytes; 1,000 per shard keeps each ConfigMap near 300 KiB (limit 1 MiB). The operator writes a
chunk's record *before* deleting its finished Job, so a restart never loses a commit.
"""

from __future__ import annotations

import json
from typing import Any

from rivet_operator.specs import names
from rivet_operator.specs.names import Owner

SHARD_SIZE = 1000


def metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": owner.namespace, "labels": labels, "ownerReferences": [owner.reference()]}


def run_config(owner: Owner, run: str, rivet_yaml: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, names.config_map(owner, run), names.labels(owner, run, "config")),
        "data": {"rivet.yaml": rivet_yaml},
    }


def shard_of(chunk: int) -> int:
    return (chunk - 1) // SHARD_SIZE


def shard_count(total_chunks: int) -> int:
    return 0 if total_chunks <= 0 else shard_of(total_chunks) + 1


def record_key(chunk: int) -> str:
    return f"chunk-{chunk:06d}.json"


def record_data(chunk: int, record: dict[str, Any]) -> dict[str, str]:
    return {record_key(chunk): json.dumps(record, separators=(",", ":"), default=str)}


def ledger_shard(owner: Owner, run: str, chunk: int, record: dict[str, Any]) -> dict[str, Any]:
    """The shard holding `chunk`, with that one record (created, or merged into the existing shard)."""
    name = names.ledger_shard(owner, run, shard_of(chunk))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, name, names.labels(owner, run, "ledger")),
        "data": record_data(chunk, record),
    }


def parse_records(configmaps: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """All records in these ledger shards, by chunk index."""
    out: dict[int, dict[str, Any]] = {}
    for cm in configmaps:
        for key, value in (cm.get("data") or {}).items():
            if key.startswith("chunk-") and key.endswith(".json"):
                try:
                    out[int(key[6:-5])] = json.loads(value)
                except (ValueError, TypeError):
                    continue
    return out
