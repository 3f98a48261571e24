"""The finalize Job reads the ledger from projected ConfigMap volumes: each record exactly once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rivet.commands.finalize import read_ledger
from rivet.config import load_config
from rivet.contract.fingerprint import ledger_digest
from rivet.errors import EXIT_RETRYABLE, ConfigError, ContractError, LedgerMismatch


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


def test_finalize_takes_exactly_the_ledger_the_operator_recorded(tmp_path: Path) -> None:
    """`--ledger-digest`: the operator's sha256 of the records it wrote (RivetLedger status); a transport
    ConfigMap edited, extended or shortened on the way is refused, retryably, before anything is certified."""
    texts = {f"chunk-{i:06d}.json": json.dumps(record(i), separators=(",", ":")) for i in (1, 2, 3)}
    digest = ledger_digest(texts.items())
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    assert [r.chunk for r in read_ledger(str(tmp_path), digest)] == [1, 2, 3]
    for tamper in (
        lambda: (tmp_path / "chunk-000002.json").write_text(json.dumps(record(2, rows=0), separators=(",", ":"))),
        lambda: (tmp_path / "chunk-000004.json").write_text(json.dumps(record(4), separators=(",", ":"))),
        lambda: (tmp_path / "chunk-000003.json").unlink(),
    ):
        for name, text in texts.items():
            (tmp_path / name).write_text(text)
        (tmp_path / "chunk-000004.json").unlink(missing_ok=True)
        tamper()
        with pytest.raises(LedgerMismatch, match="not the one the operator recorded") as err:
            read_ledger(str(tmp_path), digest)
        assert err.value.exit_code == EXIT_RETRYABLE and err.value.reason == "LedgerMismatch"


def test_the_ledger_digest_covers_names_and_bytes() -> None:
    one = ledger_digest([("chunk-000001.json", '{"rows":1}')])
    assert one.startswith("sha256:") and len(one) == 7 + 64
    assert one != ledger_digest([("chunk-000002.json", '{"rows":1}')])
    assert one != ledger_digest([("chunk-000001.json", '{"rows": 1}')])
    assert ledger_digest([("a", "1"), ("b", "2")]) == ledger_digest([("b", "2"), ("a", "1")])
    assert ledger_digest([("a", "1b\n")]) != ledger_digest([("a", "1"), ("b", "")])  # no ambiguous joins


def test_config_from_an_environment_variable_is_read_byte_for_byte() -> None:
    text = "source: {type: postgres, url_env: DB}\nexports:\n  - {name: o, query: \"SELECT '$$', '$(HOME)'\", mode: full,\n     destination: {type: local, path: /tmp/x}}\n"
    cfg = load_config("env:RIVET_JOB_CONFIG", env={"RIVET_JOB_CONFIG": text, "DB": "postgresql://u@h/d"})
    assert cfg.exports[0].query == "SELECT '$$', '$(HOME)'"
    with pytest.raises(ConfigError, match="RIVET_JOB_CONFIG is not set"):
        load_config("env:RIVET_JOB_CONFIG", env={})
