"""The CLI's run ledger: SQLite, one transaction per change, so SIGKILL never corrupts it.

The destination plus this ledger are the truth for resume; an end-of-run manifest is not required.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rivet.contract import values
from rivet.contract.manifest import CommitRecord
from rivet.contract.plan import Plan
from rivet.errors import RivetError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, export TEXT NOT NULL, plan_json TEXT NOT NULL, plan_fp TEXT NOT NULL,
  prefix TEXT NOT NULL, run_date TEXT NOT NULL, started_at TEXT NOT NULL, status TEXT NOT NULL,
  cursor_start TEXT, updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS chunks (
  run_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT, record TEXT, PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS cursors (
  export TEXT PRIMARY KEY, value TEXT NOT NULL, run_id TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    export: str
    plan: Plan
    prefix: str
    run_date: str
    started_at: str
    status: str
    cursor_start: Any


class StateStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise RivetError(f"cannot open state file {self.path}: {exc} (check state.path)") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(sql, params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def create_run(self, run: RunRow) -> None:
        self._write(
            "INSERT INTO runs (run_id, export, plan_json, plan_fp, prefix, run_date, started_at, status, cursor_start)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.run_id,
                run.export,
                json.dumps(run.plan.to_dict()),
                run.plan.fingerprint,
                run.prefix,
                run.run_date,
                run.started_at,
                run.status,
                json.dumps(values.encode(run.cursor_start)),
            ),
        )

    def set_run_status(self, run_id: str, status: str) -> None:
        self._write(
            "UPDATE runs SET status = ?, updated_at = CURRENT_TIMESTAMP WHERE run_id = ?",
            (status, run_id),
        )

    def _row(self, row: tuple[Any, ...] | None) -> RunRow | None:
        if row is None:
            return None
        return RunRow(
            run_id=row[0],
            export=row[1],
            plan=Plan.from_dict(json.loads(row[2])),
            prefix=row[3],
            run_date=row[4],
            started_at=row[5],
            status=row[6],
            cursor_start=values.decode(json.loads(row[7])) if row[7] else None,
        )

    _COLS = "run_id, export, plan_json, prefix, run_date, started_at, status, cursor_start"

    def get_run(self, run_id: str) -> RunRow | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return self._row(row)

    def latest_run(self, export: str) -> RunRow | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._COLS} FROM runs WHERE export = ? ORDER BY started_at DESC, rowid DESC LIMIT 1",
                (export,),
            ).fetchone()
        return self._row(row)

    def mark_chunk(self, run_id: str, idx: int, status: str, error: str | None = None) -> None:
        self._write(
            "INSERT INTO chunks (run_id, idx, status, attempts, last_error) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (run_id, idx) DO UPDATE SET status = excluded.status,"
            " attempts = chunks.attempts + (CASE WHEN excluded.status = 'running' THEN 1 ELSE 0 END),"
            " last_error = COALESCE(excluded.last_error, chunks.last_error)",
            (run_id, idx, status, 1 if status == "running" else 0, error),
        )

    def commit_chunk(self, run_id: str, record: CommitRecord) -> None:
        self._write(
            "INSERT INTO chunks (run_id, idx, status, record) VALUES (?, ?, 'committed', ?)"
            " ON CONFLICT (run_id, idx) DO UPDATE SET status = 'committed', record = excluded.record",
            (run_id, record.chunk, json.dumps(record.to_dict())),
        )

    def committed(self, run_id: str) -> dict[int, CommitRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM chunks WHERE run_id = ? AND status = 'committed'", (run_id,)
            ).fetchall()
        records = [CommitRecord.from_dict(json.loads(r[0])) for r in rows]
        return {r.chunk: r for r in records}

    def chunk_statuses(self, run_id: str) -> dict[int, tuple[str, int, str | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, status, attempts, last_error FROM chunks WHERE run_id = ?", (run_id,)
            ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def cursor(self, export: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM cursors WHERE export = ?", (export,)).fetchone()
        return values.decode(json.loads(row[0])) if row else None

    def set_cursor(self, export: str, value: Any, run_id: str) -> None:
        self._write(
            "INSERT INTO cursors (export, value, run_id) VALUES (?, ?, ?) ON CONFLICT (export) DO UPDATE"
            " SET value = excluded.value, run_id = excluded.run_id, updated_at = CURRENT_TIMESTAMP",
            (export, json.dumps(values.encode(value)), run_id),
        )
