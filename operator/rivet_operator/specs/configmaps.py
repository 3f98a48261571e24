"""The ledger of a run's chunk commit records (pure), and the ConfigMaps that hand it to the finalize Job.

The ledger lives in RivetLedger objects, the operator's own kind: records sit in the status subresource,
which only the operator's role may write, so nothing another namespace user creates can make a chunk count
as committed. It is sharded so 100,000 chunks stay far below object limits: a record is ~300 bytes, 1,000 per
shard keeps each object near 300 KiB (limit 1.5 MiB). The operator writes a chunk's record *before* deleting
its finished Job, so a restart never loses a commit.

The finalize Job cannot read our kind (its pods have no API token), so the operator copies the records into
ConfigMaps of the same shards just before it creates the Job, and passes the records' digest
(`rivet.contract.fingerprint.ledger_digest`) in the Job's immutable arguments: finalize refuses a ledger
that was changed on the way.
"""

from __future__ import annotations

import json
from typing import Any

from rivet_operator import GROUP, VERSION
from rivet_operator.specs import names
from rivet_operator.specs.names import Owner

SHARD_SIZE = 1000


def metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": owner.namespace, "labels": labels, "ownerReferences": [owner.reference()]}


def shard_of(chunk: int) -> int:
    return (chunk - 1) // SHARD_SIZE


def capacity(shard: int, total_chunks: int) -> int:
    """How many chunks of a `total_chunks` plan shard `shard` holds once every one is committed."""
    return max(0, min(SHARD_SIZE, total_chunks - shard * SHARD_SIZE))


def shard_count(total_chunks: int) -> int:
    return 0 if total_chunks <= 0 else shard_of(total_chunks) + 1


def record_key(chunk: int) -> str:
    return f"chunk-{chunk:06d}.json"


def record_text(record: dict[str, Any]) -> str:
    """A commit record as the ledger keeps it and finalize reads it."""
    return json.dumps(record, separators=(",", ":"), default=str)


def ledger(owner: Owner, run: str, chunk: int, export: str) -> dict[str, Any]:
    """The RivetLedger shard holding `chunk` (its records are written to the status, never on create)."""
    shard = shard_of(chunk)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RivetLedger",
        "metadata": metadata(owner, names.ledger_shard(owner, run, shard), names.labels(owner, run, "ledger")),
        "spec": {"export": export, "runId": run, "shard": shard},
    }


def transport(owner: Owner, run: str, shard: int, records: dict[str, str]) -> dict[str, Any]:
    """The ConfigMap that hands one shard's records (as recorded, byte for byte) to the finalize Job."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, names.ledger_shard(owner, run, shard), names.labels(owner, run, "transport")),
        "data": dict(records),
    }


def transports(owner: Owner, run: str, records: dict[str, str]) -> list[dict[str, Any]]:
    """One transport ConfigMap per shard of `records` (record key -> text)."""
    by_shard: dict[int, dict[str, str]] = {}
    for key, text in records.items():
        by_shard.setdefault(shard_of(chunk_of(key) or 1), {})[key] = text
    return [transport(owner, run, shard, by_shard[shard]) for shard in sorted(by_shard)]


def chunk_of(key: str) -> int | None:
    if key.startswith("chunk-") and key.endswith(".json"):
        try:
            return int(key[6:-5])
        except ValueError:
            return None
    return None


def parse_records(shards: list[dict[str, str]]) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    """All records of these ledger shards: parsed by chunk index, and as recorded (key -> text)."""
    out: dict[int, dict[str, Any]] = {}
    texts: dict[str, str] = {}
    for records in shards:
        for key, value in records.items():
            idx = chunk_of(key)
            if idx is None:
                continue
            try:
                out[idx] = json.loads(value)
            except (ValueError, TypeError):
                continue
            texts[key] = value
    return out, texts
