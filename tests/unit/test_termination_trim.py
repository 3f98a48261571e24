"""A commit record over the 4 KiB termination message keeps its shape: `key_range` is dropped (finalize
takes it from the plan), never turned into shortened text that would reach the manifest."""

from __future__ import annotations

import json
from pathlib import Path

from rivet.cli.output import TERMINATION_LIMIT, write_termination
from rivet.contract.manifest import CommitRecord


def test_an_oversized_record_keeps_every_field_the_ledger_needs(tmp_path: Path) -> None:
    record = {
        "chunk": 2,
        "key": "part-000002.parquet",
        "rows": 7,
        "size_bytes": 123,
        "content_fingerprint": "xxh3:0123456789abcdef",
        "content_md5": "AAAAAAAAAAAAAAAAAAAAAA==",
        "schema_fingerprint": "xxh3:1",
        "key_range": ["k" * 2_000, "z" * 2_000],
        "quarantined": ["_quarantine/r/part-000002.parquet"] * 3,
    }
    path = tmp_path / "termination"
    write_termination(str(path), json.dumps(record, separators=(",", ":")))
    text = path.read_text()
    assert len(text.encode()) <= TERMINATION_LIMIT
    out = json.loads(text)
    assert out["key_range"] is None and out["key"] == "part-000002.parquet" and out["rows"] == 7
    assert CommitRecord.from_dict(out).content_fingerprint == "xxh3:0123456789abcdef"
