"""The finalize Job reads the ledger from projected ConfigMap volumes: each record exactly once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rivet.commands.finalize import read_ledger
from rivet.errors import ContractError


def record(chunk: int, rows: int = 10) -> dict[str, object]:
    return {
        "chunk": chunk,
        "key": f"part-{chunk:06d}.parquet",
        "rows": rows,
        "size_bytes": 100,
        "content_fingerprint": "xxh3:0123456789abcdef",
        "content_md5": "",
        "schema_fingerprint": "xxh3:1",
    }


def test_configmap_volume_layout_is_read_once_per_record(tmp_path: Path) -> None:
    # kubelet's layout: real files in ..<timestamp>/, ..data -> it, and a top-level symlink per key
    real = tmp_path / "..2026_11_23_06_00_00.123"
    real.mkdir()
    for i in (1, 2, 3):
        (real / f"chunk-{i:06d}.json").write_text(json.dumps(record(i)))
    os.symlink(real.name, tmp_path / "..data")
    for i in (1, 2, 3):
        os.symlink(f"..data/chunk-{i:06d}.json", tmp_path / f"chunk-{i:06d}.json")
    records = read_ledger(str(tmp_path))
    assert [r.chunk for r in records] == [1, 2, 3]


def test_conflicting_records_for_one_chunk_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(record(1)) + "\n" + json.dumps(record(1, rows=11)) + "\n")
    with pytest.raises(ContractError, match="two different records for chunk 1"):
        read_ledger(str(path))
