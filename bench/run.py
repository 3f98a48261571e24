"""Throughput benchmark: Rivet against the servers' own export floors, side by side, in one run.

    .venv/bin/python -m bench.run [--rows N] [--quick] [--engines postgres,mysql] [--rows-small M]
    .venv/bin/python -m bench.run --memory-only --rows 20000000 --rows-small 5000000

Starts PostgreSQL 15, MariaDB and SeaweedFS on 127.0.0.1 (the test fixtures' start functions), generates
an N-row x 12-column table server-side in each database, then for each engine measures, interleaved
with the engine's floor (floor, candidate, floor, candidate, ..., floor; each candidate's ratio is to the
mean of the floor runs just before and after it, because absolute times drift 20-30% on these machines):

- floor: PostgreSQL `psql \\copy (SELECT * ...) TO file CSV`; MariaDB `mariadb --batch --quick -e ... > file`
- ConnectorX arrow_stream -> pyarrow ParquetWriter (zstd), a reference reader
- `rivet run`: full and chunked (parallel 2), Parquet zstd and CSV, to local disk and to S3 (SeaweedFS)
- the Rust Rivet CLI (crates.io `rivet-cli` 0.8.0, built once by bench/rust_baseline.sh and cached under
  /var/cache/rivet-bench): full and chunked x2, Parquet zstd and CSV, local disk, at its defaults (on
  MariaDB with `statement_timeout_s: 0`: its default sets `max_execution_time`, which MariaDB lacks)

Every candidate is a child process: wall time from spawn to exit, peak RSS from `/usr/bin/time -f %M`
(falls back to os.wait4's ru_maxrss, which overstates small children: it survives execve).
Source harm, sampled every 200 ms from a separate connection while each run (floors too) is going:
PostgreSQL pg_stat_activity: the longest open transaction, the longest a backend held one xmin (the
snapshot that holds back vacuum) and the oldest backend_xmin age in transactions; MariaDB: the longest
running statement (PROCESSLIST) and the longest open InnoDB transaction.
Then a memory-boundedness check: `rivet run` full Parquet to local at N and at --rows-small rows.
Prints a table and writes bench/results.json with the raw figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py` (make bench): make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from bench.datagen import TABLE, count_rows, fill_mariadb, fill_postgres
from bench.procstat import cpu_seconds
from tests.fixtures.databases import DbServer, start_mariadb, start_postgres
from tests.fixtures.objectstores import S3Server, start_seaweedfs

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
PSQL = "/usr/bin/psql"
MARIADB = shutil.which("mariadb") or "/usr/bin/mariadb"
RESULTS = REPO / "bench" / "results.json"
TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # Debian package `time`
TARGET_RATIO = 1.0
TARGET_RSS_MB = 150.0
# Ratio targets per (engine, format): PostgreSQL Parquet <= 0.9x, CSV <= 1.1x; MariaDB CSV <= 1.2x.
TARGET_RATIOS = {
    ("postgres", "parquet"): 0.9,
    ("postgres", "csv"): 1.1,
    ("mysql", "parquet"): 1.0,
    ("mysql", "csv"): 1.2,
}
TARGET_S3_SLOWDOWN = 0.10  # S3 within 10% of the same export to local disk
TARGET_RSS_GROWTH = 0.10
RUST_VERSION = os.environ.get("RIVET_RUST_VERSION", "0.8.0")
RUST_SCRIPT = REPO / "bench" / "rust_baseline.sh"
HARM_INTERVAL_S = 0.2
DB_URL_ENV, S3_KEY_ENV, S3_SECRET_ENV = "BENCH_DB_URL", "BENCH_S3_KEY", "BENCH_S3_SECRET"
ENGINE_LABEL = {"postgres": "PostgreSQL", "mysql": "MariaDB"}


# --- measuring one child process ---------------------------------------------------------------


@dataclass
class Run:
    """One measured child process."""

    label: str
    wall_s: float
    rss_mb: float
    code: int
    cpu_s: float = 0.0  # the child's user + system CPU seconds (client side only; the server's is not here)
    out_bytes: int = 0
    rows: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    harm: dict[str, Any] = field(default_factory=dict)


# --- source harm: what each run holds open on the server ------------------------------------------


class HarmSampler:
    """Samples the server every HARM_INTERVAL_S from its own connection while a run goes on.

    PostgreSQL (client backends of the bench database other than ours): the longest open transaction
    (now() - xact_start), the longest any backend kept the same backend_xmin (how long one snapshot held
    back vacuum), and the oldest backend_xmin age in transactions. MariaDB: the longest running statement
    (PROCESSLIST, ours excluded) and the longest open InnoDB transaction (INNODB_TRX)."""

    def __init__(self, db: DbServer) -> None:
        self.db = db
        self.stop = threading.Event()
        self.samples = 0
        self.longest_xact_s = 0.0
        self.longest_stmt_s = 0.0
        self.xmin_held_s = 0.0
        self.oldest_xmin_age = 0
        self.backends = 0
        self.error: str | None = None
        self._first_seen: dict[tuple[int, str], float] = {}
        self._thread = threading.Thread(target=self._run, name="harm-sampler", daemon=True)

    def __enter__(self) -> HarmSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = self.db.connect()
        except Exception as exc:
            self.error = str(exc)
            return
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    self._sample(conn)
                except Exception as exc:  # keep sampling; a transient error costs one sample
                    self.error = str(exc)[:200]
                self.stop.wait(max(0.0, HARM_INTERVAL_S - (time.monotonic() - started)))
        finally:
            conn.close()

    def _sample(self, conn: Any) -> None:
        now = time.monotonic()
        self.samples += 1
        if self.db.engine == "postgres":
            rows = conn.execute(
                "SELECT pid, extract(epoch FROM now() - xact_start), extract(epoch FROM now() - query_start), "
                "state, backend_xmin::text, age(backend_xmin) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()"
            ).fetchall()
            self.backends = max(self.backends, len(rows))
            for pid, xact_s, query_s, state, xmin, age in rows:
                if xact_s is not None:
                    self.longest_xact_s = max(self.longest_xact_s, float(xact_s))
                if state == "active" and query_s is not None:
                    self.longest_stmt_s = max(self.longest_stmt_s, float(query_s))
                if xmin is not None:
                    first = self._first_seen.setdefault((pid, xmin), now)
                    self.xmin_held_s = max(self.xmin_held_s, now - first + HARM_INTERVAL_S)
                    self.oldest_xmin_age = max(self.oldest_xmin_age, int(age or 0))
            return
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*), COALESCE(MAX(TIME_MS), 0) / 1000 FROM information_schema.PROCESSLIST "
                "WHERE ID <> CONNECTION_ID() AND USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) "
                "AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', 'Killed')"
            )
            count, stmt_s = cur.fetchone()
            self.backends = max(self.backends, int(count))
            self.longest_stmt_s = max(self.longest_stmt_s, float(stmt_s or 0))
            cur.execute(
                "SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, trx_started, NOW())), 0) / 1e6 FROM information_schema.INNODB_TRX"
            )
            (xact_s,) = cur.fetchone()
            self.longest_xact_s = max(self.longest_xact_s, float(xact_s or 0))

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "samples": self.samples,
            "max_backends": self.backends,
            "longest_xact_s": round(self.longest_xact_s, 2),
            "longest_stmt_s": round(self.longest_stmt_s, 2),
        }
        if self.db.engine == "postgres":
            out |= {"xmin_held_s": round(self.xmin_held_s, 2), "oldest_xmin_age": self.oldest_xmin_age}
        if self.error:
            out["error"] = self.error
        return out


def measure(
    label: str, argv: list[str], env: dict[str, str], stdout_path: Path | None = None, cwd: Path | None = None
) -> tuple[Run, str]:
    """Run argv; wall time spawn-to-exit, ru_maxrss of the child (and its reaped children) from wait4."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout_path, "wb") if stdout_path else tempfile.TemporaryFile())  # noqa: SIM115
        err = stack.enter_context(tempfile.TemporaryFile())
        rss_file = stack.enter_context(tempfile.NamedTemporaryFile(prefix="rss-", suffix=".txt"))
        # ru_maxrss survives execve: a child forked from this (pyarrow-sized) process would report our RSS.
        # GNU time is a small process, so its child's maximum is the program's own.
        wrapper = [TIME_BIN, "-f", "%M %U %S", "-o", rss_file.name] if TIME_BIN else []
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*wrapper, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd or REPO,
            start_new_session=True,  # its own process group: an interrupted bench stops exactly this child
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
        rss_kb, cpu_s = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if TIME_BIN:
            last = (Path(rss_file.name).read_text().strip().splitlines() or [""])[-1].split()
            with contextlib.suppress(ValueError, IndexError):
                rss_kb, cpu_s = int(last[0]), float(last[1]) + float(last[2])
        stdout = ""
        if stdout_path is None:
            out.seek(0)
            stdout = out.read().decode(errors="replace")
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    run = Run(label, round(wall, 3), round(rss_kb / 1024, 1), proc.returncode, cpu_s=round(cpu_s, 2))
    if proc.returncode != 0:
        run.error = (stderr.strip() or stdout.strip())[-2000:]
    return run, stdout


# --- engines and candidates ----------------------------------------------------------------------


@dataclass
class Engine:
    name: str  # postgres | mysql
    db: DbServer
    rows: int
    work: Path
    env: dict[str, str]

    def floor(self, label: str = "floor") -> Run:
        out = self.work / "floor.out"
        with HarmSampler(self.db) as harm:
            if self.name == "postgres":
                url = f"postgresql://{self.db.user}@{self.db.host}:{self.db.port}/{self.db.database}"
                copy = f"\\copy (SELECT * FROM {TABLE}) TO '{out}' CSV"
                env = {**self.env, "PGPASSWORD": self.db.password}
                run, _ = measure(label, [PSQL, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy], env)
            else:
                argv = [MARIADB, "--batch", "--quick", "-h", self.db.host, "-P", str(self.db.port), "-u", self.db.user]
                argv += [self.db.database, "-e", f"SELECT * FROM {TABLE}"]
                env = {**self.env, "MYSQL_PWD": self.db.password}
                run, _ = measure(label, argv, env, stdout_path=out)
        run.harm = harm.figures()
        run.out_bytes = out.stat().st_size if out.exists() else 0
        out.unlink(missing_ok=True)
        return run


@dataclass(frozen=True)
class Candidate:
    key: str
    kind: str  # cx | rivet | rust
    fmt: str = "parquet"  # parquet | csv
    dest: str = "local"  # local | s3
    mode: str = "full"  # full | chunked
    env: tuple[tuple[str, str], ...] = ()  # engine settings for this candidate only (RIVET_* variables)
    variant: str = ""  # shown after the title
    engines: tuple[str, ...] = ("postgres", "mysql")

    @property
    def title(self) -> str:
        if self.kind == "cx":
            return "ConnectorX -> Parquet zstd (local)"
        fmt = "Parquet zstd" if self.fmt == "parquet" else "CSV"
        mode = "chunked x2" if self.mode == "chunked" else "full"
        tool = f"Rust rivet {RUST_VERSION}" if self.kind == "rust" else "rivet"
        return f"{tool} {mode} -> {fmt} ({self.dest}){' ' + self.variant if self.variant else ''}"


ALL_CANDIDATES = [
    Candidate("cx-parquet-local", "cx"),
    Candidate("rivet-full-parquet-local", "rivet"),
    Candidate("rivet-chunked-parquet-local", "rivet", mode="chunked"),
    Candidate("rivet-full-csv-local", "rivet", fmt="csv"),
    Candidate("rivet-chunked-csv-local", "rivet", fmt="csv", mode="chunked"),
    Candidate("rivet-full-parquet-s3", "rivet", dest="s3"),
    Candidate("rivet-chunked-parquet-s3", "rivet", dest="s3", mode="chunked"),
    Candidate("rivet-full-csv-s3", "rivet", fmt="csv", dest="s3"),
    Candidate("rivet-chunked-csv-s3", "rivet", fmt="csv", dest="s3", mode="chunked"),
    # PostgreSQL paths that are off by default, measured side by side: 2 ctid-range readers on one
    # snapshot (sources/pg_parallel.py), and the CSV passthrough for a schema with timestamps (pg_copy.py).
    Candidate(
        "rivet-full-parquet-local-2readers",
        "rivet",
        env=(("RIVET_PG_READERS", "2"),),
        variant="[2 readers]",
        engines=("postgres",),
    ),
    Candidate(
        "rivet-full-csv-local-passthrough",
        "rivet",
        fmt="csv",
        env=(("RIVET_CSV_PASSTHROUGH", "force"),),
        variant="[COPY passthrough]",
        engines=("postgres",),
    ),
    Candidate("rust-full-parquet-local", "rust"),
    Candidate("rust-chunked-parquet-local", "rust", mode="chunked"),
    Candidate("rust-full-csv-local", "rust", fmt="csv"),
    Candidate("rust-chunked-csv-local", "rust", fmt="csv", mode="chunked"),
]
QUICK_KEYS = {
    "cx-parquet-local",
    "rivet-full-parquet-local",
    "rivet-chunked-parquet-local",
    "rivet-full-csv-local",
    "rivet-full-parquet-s3",
    "rust-full-parquet-local",
    "rust-full-csv-local",
}


@dataclass
class S3Target:
    server: S3Server
    bucket: str

    def clear(self, prefix: str) -> None:
        client = self.server.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, s3: S3Target | None, rust_bin: str | None = None) -> None:
        self.args = args
        self.work = work
        self.s3 = s3
        self.seq = 0
        self.rust_bin = rust_bin

    def rust(self, eng: Engine, cand: Candidate, label: str) -> Run:
        """The Rust CLI at its defaults, its config generated from its documented format (crate README,
        docs/reference/config.md): query, mode, chunk_column/chunk_count/parallel, format, compression."""
        if self.rust_bin is None:
            return Run(label, 0.0, 0.0, -1, error="Rust rivet CLI not built (bench/rust_baseline.sh failed)")
        self.seq += 1
        run_dir = self.work / f"rust-{self.seq:03d}"
        run_dir.mkdir()
        exp: dict[str, Any] = {"name": "bench", "query": f"SELECT * FROM {TABLE}", "mode": cand.mode}
        if cand.mode == "chunked":
            exp |= {"chunk_column": "id", "chunk_count": self.args.chunk_count, "parallel": 2}
        exp |= {"format": cand.fmt, "compression": "zstd" if cand.fmt == "parquet" else "none"}
        if eng.name == "mysql":  # MySQL/MariaDB report no DECIMAL precision on the wire: declare it
            exp["columns"] = {"amount": "decimal(12,2)"}
        exp["destination"] = {"type": "local", "path": str(run_dir / "out")}
        source: dict[str, Any] = {"type": eng.name, "url_env": DB_URL_ENV}
        if eng.name == "mysql":  # its default statement timeout sets max_execution_time (MySQL only)
            source["tuning"] = {"statement_timeout_s": 0}
        cfg = run_dir / "rivet.yaml"
        cfg.write_text(yaml.safe_dump({"source": source, "exports": [exp]}, sort_keys=False))
        with HarmSampler(eng.db) as harm:
            run, stdout = measure(label, [self.rust_bin, "run", "-c", str(cfg), "--json"], eng.env, cwd=run_dir)
        run.harm = harm.figures()
        try:
            summary = json.loads(stdout[stdout.index("{") :])
            run.rows = int(summary["total_rows"])
            run.out_bytes = sum(
                p.stat().st_size for p in (run_dir / "out").iterdir() if p.suffix in (".parquet", ".csv")
            )
            run.extra = {"files": summary.get("total_files"), "status": summary.get("success_count")}
        except (ValueError, KeyError, TypeError, OSError) as exc:
            run.error = run.error or f"unparseable summary ({exc}): {stdout[-500:]}"
        if not run.error:
            run.extra["parquet"] = parquet_layout(run_dir / "out")
        shutil.rmtree(run_dir, ignore_errors=True)
        return run

    def rivet(self, eng: Engine, cand: Candidate, label: str, query: str | None = None) -> Run:
        self.seq += 1
        run_dir = self.work / f"rivet-{self.seq:03d}"
        run_dir.mkdir()
        exp: dict[str, Any] = {"name": "bench"}
        if query:
            exp["query"] = query
        else:
            exp["table"] = TABLE
        if cand.mode == "chunked":
            exp |= {"mode": "chunked", "chunk_column": "id", "chunk_count": self.args.chunk_count, "parallel": 2}
        exp["format"] = cand.fmt
        if cand.fmt == "parquet":
            exp["compression"] = "zstd"
        prefix = f"{eng.name}/{label}/{self.seq:03d}/"
        if cand.dest == "local":
            exp["destination"] = {"type": "local", "path": str(run_dir / "out")}
        else:
            assert self.s3 is not None
            exp["destination"] = {
                "type": "s3",
                "bucket": self.s3.bucket,
                "prefix": prefix,
                "endpoint": self.s3.server.endpoint,
                "region": self.s3.server.region,
                "access_key_env": S3_KEY_ENV,
                "secret_key_env": S3_SECRET_ENV,
            }
        doc = {
            "source": {"type": eng.name, "url_env": DB_URL_ENV, "tuning": {"statement_timeout_s": 7200}},
            "state": {"path": str(run_dir / "state.db")},
            "exports": [exp],
        }
        cfg = run_dir / "rivet.yaml"
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
        store_cpu = self._store_cpu_s() if cand.dest == "s3" else None
        with HarmSampler(eng.db) as harm:
            run, stdout = measure(label, [PY, "-m", "rivet", "run", "-c", str(cfg)], eng.env | dict(cand.env))
        run.harm = harm.figures()
        if store_cpu is not None:
            # SeaweedFS shares the 2 cores: its CPU during the run is time the export could not use.
            run.extra["store_cpu_s"] = round(self._store_cpu_s() - store_cpu, 2)
        try:
            summary = json.loads(stdout)["exports"][0]
            run.rows = int(summary.get("rows", -1))
            run.out_bytes = int(summary.get("bytes", 0))
            run.extra |= {k: summary[k] for k in ("parts", "duration_s", "rows_per_s", "status") if k in summary} | {
                "engine_peak_rss_mb": json.loads(stdout).get("peak_rss_mb")
            }
        except (ValueError, KeyError, IndexError, TypeError):
            run.error = run.error or f"unparseable summary: {stdout[-500:]}"
        if cand.dest == "local" and cand.fmt == "parquet" and not run.error:
            run.extra["parquet"] = parquet_layout(run_dir / "out")
        shutil.rmtree(run_dir, ignore_errors=True)
        if cand.dest == "s3" and self.s3 is not None:
            self.s3.clear(prefix)
        return run

    def _store_cpu_s(self) -> float:
        """CPU seconds used so far by the S3 server process (SeaweedFS, started by this bench)."""
        proc = self.s3.server.process if self.s3 is not None else None
        return cpu_seconds(proc.proc.pid) if proc is not None else 0.0

    def cx(self, eng: Engine, label: str) -> Run:
        out = self.work / "cx.parquet"
        env = {**eng.env, "BENCH_CX_URL": eng.db.url}
        run, stdout = measure(
            label, [PY, "-m", "bench.cx_parquet", "-", f"SELECT * FROM {TABLE}", str(out), "50000"], env
        )
        run.out_bytes = out.stat().st_size if out.exists() else 0
        out.unlink(missing_ok=True)
        with contextlib.suppress(ValueError, KeyError):
            run.rows = int(json.loads(stdout.strip().splitlines()[-1])["rows"])
        return run

    def candidate(self, eng: Engine, cand: Candidate) -> Run:
        if cand.kind == "cx":
            return self.cx(eng, cand.key)
        if cand.kind == "rust":
            return self.rust(eng, cand, cand.key)
        return self.rivet(eng, cand, cand.key)


def parquet_layout(out_dir: Path) -> dict[str, Any]:
    """Row groups, rows per group and bytes per column of the Parquet files in `out_dir` (output-size
    comparisons: what each writer chose)."""
    import pyarrow.parquet as pq

    groups, rows, columns = 0, 0, {}
    for path in sorted(out_dir.rglob("*.parquet")):
        meta = pq.ParquetFile(path).metadata
        groups += meta.num_row_groups
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                entry = columns.setdefault(
                    col.path_in_schema, {"bytes": 0, "encodings": set(), "physical": col.physical_type}
                )
                entry["bytes"] += col.total_compressed_size
                entry["encodings"].update(col.encodings)
    for entry in columns.values():
        entry["encodings"] = sorted(entry["encodings"])
    return {"row_groups": groups, "rows": rows, "columns": columns}


# --- the run --------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def describe_run(run: Run) -> str:
    s = f"{run.label}: {run.wall_s:.1f}s, {run.rss_mb:.0f} MB"
    if run.error:
        s += f"  ERROR: {run.error.splitlines()[-1] if run.error.splitlines() else run.error}"
    return s


def bench_engine(bench: Bench, eng: Engine, candidates: list[Candidate]) -> dict[str, Any]:
    log(f"{eng.name}: warm-up floor")
    warm = eng.floor("floor-warmup")
    log(describe_run(warm))
    floors: list[Run] = []
    results: list[dict[str, Any]] = []
    before = eng.floor("floor")
    floors.append(before)
    log(describe_run(before))
    for cand in candidates:
        if eng.name not in cand.engines:
            continue
        run = bench.candidate(eng, cand)
        if run.rows is not None and run.rows != eng.rows and not run.error:
            run.error = f"exported {run.rows} rows, expected {eng.rows}"
        log(describe_run(run))
        after = eng.floor("floor")
        floors.append(after)
        log(describe_run(after))
        floor_ref = (before.wall_s + after.wall_s) / 2
        results.append(
            {
                "candidate": asdict(cand),
                "title": cand.title,
                "run": asdict(run),
                "floor_before_s": before.wall_s,
                "floor_after_s": after.wall_s,
                "floor_ref_s": round(floor_ref, 3),
                "ratio": round(run.wall_s / floor_ref, 3),
                "rows_per_s": round(eng.rows / run.wall_s) if run.wall_s > 0 else 0,
            }
        )
        before = after
    return {
        "engine": eng.name,
        "rows": eng.rows,
        "warmup": asdict(warm),
        "floors": [asdict(f) for f in floors],
        "floor_mean_s": round(statistics.fmean(f.wall_s for f in floors), 3),
        "floor_stdev_s": round(statistics.stdev(f.wall_s for f in floors), 3) if len(floors) > 1 else 0.0,
        "floor_rss_mb": max(f.rss_mb for f in floors),
        "floor_out_bytes": floors[0].out_bytes,
        "candidates": results,
    }


def memory_check(bench: Bench, eng: Engine, small: int, at_n: Run | None) -> dict[str, Any]:
    """rivet full Parquet to local at N and at `small` rows: peak RSS should not grow with N."""
    cand = Candidate("rivet-full-parquet-local", "rivet")
    if at_n is None:
        log(f"{eng.name}: memory check at N={eng.rows:,}")
        at_n = bench.rivet(eng, cand, f"mem-{eng.rows}")
        log(describe_run(at_n))
    log(f"{eng.name}: memory check at {small:,} rows")
    at_small = bench.rivet(eng, cand, f"mem-{small}", query=f"SELECT * FROM {TABLE} WHERE id <= {small}")
    log(describe_run(at_small))
    if at_small.rows is not None and at_small.rows != small and not at_small.error:
        at_small.error = f"exported {at_small.rows} rows, expected {small}"
    growth = at_n.rss_mb / at_small.rss_mb - 1 if at_small.rss_mb else float("nan")
    return {
        "engine": eng.name,
        "rows_large": eng.rows,
        "rows_small": small,
        "large": asdict(at_n),
        "small": asdict(at_small),
        "rss_ratio": round(at_n.rss_mb / at_small.rss_mb, 3) if at_small.rss_mb else None,
        "rss_growth": round(growth, 3),
        "within_target": abs(growth) <= TARGET_RSS_GROWTH,
    }


# --- printing -----------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def _local_twin(candidates: list[dict[str, Any]], c: dict[str, Any]) -> dict[str, Any] | None:
    """For an S3 candidate, the same export to local disk (measured in the same run)."""
    cand = c["candidate"]
    if cand["dest"] != "s3":
        return None
    for other in candidates:
        o = other["candidate"]
        if (o["kind"], o["fmt"], o["mode"], o["dest"], tuple(o["env"])) == (
            cand["kind"],
            cand["fmt"],
            cand["mode"],
            "local",
            tuple(cand["env"]),
        ):
            return None if other["run"]["error"] else other
    return None


def _vs_rust(eng: dict[str, Any]) -> list[str]:
    """rivet against the Rust CLI for the same format and mode, local disk: time, memory, output size."""
    out = []
    by = {
        (c["candidate"]["kind"], c["candidate"]["fmt"], c["candidate"]["mode"]): c
        for c in eng["candidates"]
        if c["candidate"]["dest"] == "local" and not c["candidate"]["env"]
    }
    for fmt in ("parquet", "csv"):
        for mode in ("full", "chunked"):
            ours, theirs = by.get(("rivet", fmt, mode)), by.get(("rust", fmt, mode))
            if not ours or not theirs:
                continue
            if ours["run"]["error"] or theirs["run"]["error"]:
                failed = "rivet" if ours["run"]["error"] else "Rust"
                out.append(
                    f"  {fmt:<7} {mode:<7}: {failed} failed ({(ours['run']['error'] or theirs['run']['error']).splitlines()[-1][:100]})"
                )
                continue
            o, t = ours["run"], theirs["run"]
            out.append(
                f"  {fmt:<7} {mode:<7}: rivet {ours['ratio']:.2f}x / Rust {theirs['ratio']:.2f}x the floor "
                f"({t['wall_s'] / o['wall_s']:.1f}x faster); RSS {o['rss_mb']:.0f} / {t['rss_mb']:.0f} MB; "
                f"output {o['out_bytes'] / 1e6:.0f} / {t['out_bytes'] / 1e6:.0f} MB ({o['out_bytes'] / t['out_bytes'] - 1:+.0%})"
            )
    return out


def _snap_key(engine: str) -> str:
    """PostgreSQL: how long one snapshot (backend_xmin) was held; MariaDB: the longest statement."""
    return "xmin_held_s" if engine == "postgres" else "longest_stmt_s"


def _harm(run: dict[str, Any], key: str) -> str:
    value = (run.get("harm") or {}).get(key)
    return f"{value:>7.1f}" if isinstance(value, int | float) else f"{'-':>7}"


def render(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    rows = doc["rows"]
    lines.append(
        f"Rivet throughput benchmark: {rows:,} rows x 12 columns, {doc['cpus']} CPUs, {doc['started_at']} "
        f"(bench wall time {doc['bench_wall_s'] / 60:.1f} min)"
    )
    lines.append(
        "Ratios are to the mean of the engine's floor runs just before and after each candidate; targets: "
        "PostgreSQL Parquet <= 0.9x, CSV <= 1.1x; MariaDB Parquet <= 1.0x, CSV <= 1.2x; S3 within 10% of local; "
        f"peak RSS <= {TARGET_RSS_MB:.0f} MB."
    )
    header = (
        f"{'engine':<10} {'candidate':<42} {'wall s':>7} {'rows/s':>10} {'x floor':>8} {'RSS MB':>7} {'CPU s':>6} "
        f"{'out MB':>8} {'xact s':>7} {'snap s':>7}  target (ratio / RSS)"
    )
    for eng in doc["engines"]:
        label = ENGINE_LABEL[eng["engine"]]
        lines.append("")
        lines.append(header)
        lines.append("-" * len(header))
        floor_name = "psql \\copy CSV (floor)" if eng["engine"] == "postgres" else "mariadb --batch --quick (floor)"
        fm = eng["floor_mean_s"]
        lines.append(
            f"{label:<10} {floor_name:<42} {fm:>7.1f} {round(rows / fm):>10,} {1.0:>8.2f} {eng['floor_rss_mb']:>7.0f} "
            f"{statistics.fmean(f.get('cpu_s', 0.0) for f in eng['floors']):>6.1f} {eng['floor_out_bytes'] / 1e6:>8.0f} "
            f"{_harm(eng['floors'][0], 'longest_xact_s')} {_harm(eng['floors'][0], _snap_key(eng['engine']))}  mean of {len(eng['floors'])} runs, stdev {eng['floor_stdev_s']:.1f}s, "
            f"range {min(f['wall_s'] for f in eng['floors']):.1f}-{max(f['wall_s'] for f in eng['floors']):.1f}s"
        )
        for c in eng["candidates"]:
            run = c["run"]
            if run["error"]:
                lines.append(f"{label:<10} {c['title']:<42} FAILED: {run['error'].splitlines()[-1][:120]}")
                continue
            target = ""
            if c["candidate"]["kind"] == "rust":
                target = "(baseline)"
            elif c["candidate"]["kind"] == "rivet":
                goal = TARGET_RATIOS.get((eng["engine"], c["candidate"]["fmt"]), TARGET_RATIO)
                ratio_t = f"{_mark(c['ratio'] <= goal)} <= {goal:.1f}x"
                local = _local_twin(eng["candidates"], c)
                if local is not None:
                    slower = c["ratio"] / local["ratio"] - 1
                    ratio_t += f", {_mark(slower <= TARGET_S3_SLOWDOWN)} {slower:+.0%} vs local"
                    if "store_cpu_s" in run.get("extra", {}):
                        ratio_t += f" (store CPU {run['extra']['store_cpu_s']:.1f}s)"
                target = f"{ratio_t} / {_mark(run['rss_mb'] <= TARGET_RSS_MB)} <= {TARGET_RSS_MB:.0f} MB"
            else:
                target = "(reference)"
            lines.append(
                f"{label:<10} {c['title']:<42} {run['wall_s']:>7.1f} {c['rows_per_s']:>10,} {c['ratio']:>8.2f} "
                f"{run['rss_mb']:>7.0f} {run.get('cpu_s', 0.0):>6.1f} {run['out_bytes'] / 1e6:>8.0f} "
                f"{_harm(run, 'longest_xact_s')} {_harm(run, _snap_key(eng['engine']))}  {target}"
            )
    for eng in doc["engines"]:
        vs = _vs_rust(eng)
        if vs:
            lines.append("")
            lines.append(
                f"{ENGINE_LABEL[eng['engine']]}: rivet vs Rust rivet {doc.get('rust', {}).get('version', RUST_VERSION)} (local disk)"
            )
            lines.extend(vs)
    if doc["memory"]:
        lines.append("")
        lines.append(
            "Memory boundedness: rivet full -> Parquet zstd (local), peak RSS at two sizes (target: within 10%)"
        )
        for m in doc["memory"]:
            if m["large"]["error"] or m["small"]["error"]:
                lines.append(f"  {ENGINE_LABEL[m['engine']]}: FAILED: {m['large']['error'] or m['small']['error']}")
                continue
            lines.append(
                f"  {ENGINE_LABEL[m['engine']]:<10} {m['rows_large']:>11,} rows: {m['large']['rss_mb']:>6.0f} MB "
                f"({m['large']['wall_s']:.1f}s)   {m['rows_small']:>11,} rows: {m['small']['rss_mb']:>6.0f} MB "
                f"({m['small']['wall_s']:.1f}s)   ratio {m['rss_ratio']:.2f}  {_mark(m['within_target'])}"
            )
    lines.append("")
    lines.append(
        "xact s: the longest open transaction seen while the run went on; snap s: PostgreSQL, the longest one "
        "backend_xmin (snapshot) was held, MariaDB, the longest running statement (sampled every 200 ms)."
    )
    lines.append(
        "Setup: "
        + ", ".join(f"{ENGINE_LABEL[k]} table generated in {v:.0f}s" for k, v in doc["generate_s"].items())
        + f"; chunked = chunk_count {doc['chunk_count']}, parallel 2; raw figures in {doc.get('results_path', 'bench/results.json')}"
    )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------


def rust_baseline() -> str | None:
    """The Rust CLI's binary, built once per version by bench/rust_baseline.sh (cached); None if it cannot be."""
    log(f"Rust rivet-cli {RUST_VERSION}: bench/rust_baseline.sh (builds once, cached)")
    proc = subprocess.run(["bash", str(RUST_SCRIPT)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        log(f"Rust baseline unavailable: {proc.stderr.strip()[-500:]}")
        return None
    return proc.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def servers(engines: list[str], need_s3: bool) -> Iterator[tuple[dict[str, DbServer], S3Target | None]]:
    started: dict[str, DbServer] = {}
    s3: S3Target | None = None
    try:
        if "postgres" in engines:
            log("starting PostgreSQL 15")
            started["postgres"] = start_postgres()
        if "mysql" in engines:
            log("starting MariaDB")
            started["mysql"] = start_mariadb()
        if need_s3:
            log("starting SeaweedFS")
            server = start_seaweedfs()
            s3 = S3Target(server, "rivet-bench")
            server.client().create_bucket(Bucket=s3.bucket)
        yield started, s3
    finally:
        for db in started.values():
            with contextlib.suppress(Exception):
                db.stop()
        if s3 is not None and s3.server.process is not None:
            with contextlib.suppress(Exception):
                s3.server.process.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.run", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, help="table size (default 5,000,000; --quick: 500,000)")
    p.add_argument("--rows-small", type=int, help="memory check's small size (default rows/4)")
    p.add_argument("--quick", action="store_true", help="smoke run: 500k rows, fewer candidates")
    p.add_argument("--engines", default="postgres,mysql", help="comma-separated: postgres,mysql")
    p.add_argument("--only", help="comma-separated candidate keys (default: all, or the quick set)")
    p.add_argument("--chunk-count", type=int, default=8, help="chunks for the chunked candidates (parallel 2)")
    p.add_argument("--memory-only", action="store_true", help="only the memory-boundedness check")
    p.add_argument("--results", type=Path, default=RESULTS, help="where to write the raw figures (JSON)")
    p.add_argument("--no-rust", action="store_true", help="skip the Rust CLI baseline (and its one-time cargo build)")
    args = p.parse_args(argv)
    if args.rows is None:
        args.rows = 500_000 if args.quick else 5_000_000
    if args.rows_small is None:
        args.rows_small = max(1, args.rows // 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if args.only:
        keys = set(args.only.split(","))
        candidates = [c for c in ALL_CANDIDATES if c.key in keys]
    elif args.quick:
        candidates = [c for c in ALL_CANDIDATES if c.key in QUICK_KEYS]
    else:
        candidates = list(ALL_CANDIDATES)
    if args.memory_only:
        candidates = []
    if args.no_rust:
        candidates = [c for c in candidates if c.kind != "rust"]
    rust_bin = rust_baseline() if any(c.kind == "rust" for c in candidates) else None
    need_s3 = any(c.dest == "s3" for c in candidates)
    bench_started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc: dict[str, Any] = {
        "started_at": started_at,
        "rows": args.rows,
        "rows_small": args.rows_small,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "chunk_count": args.chunk_count,
        "rust": {"version": RUST_VERSION, "binary": rust_bin},
        "generate_s": {},
        "engines": [],
        "memory": [],
    }
    work = Path(tempfile.mkdtemp(prefix="rivet-bench-"))
    try:
        with servers(engines, need_s3) as (dbs, s3):
            bench = Bench(args, work, s3, rust_bin)
            base_env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "PYTHONUNBUFFERED": "1"}
            if s3 is not None:
                base_env |= {S3_KEY_ENV: s3.server.access_key, S3_SECRET_ENV: s3.server.secret_key}
            for name in engines:
                db = dbs[name]
                log(f"{name}: generating {args.rows:,} rows")
                gen_s = fill_postgres(db, args.rows) if name == "postgres" else fill_mariadb(db, args.rows)
                have = count_rows(db)
                if have != args.rows:
                    raise RuntimeError(f"{name}: generated {have} rows, expected {args.rows}")
                doc["generate_s"][name] = round(gen_s, 1)
                log(f"{name}: generated in {gen_s:.0f}s")
                eng = Engine(name, db, args.rows, work, {**base_env, DB_URL_ENV: db.url})
                at_n: Run | None = None
                if candidates:
                    result = bench_engine(bench, eng, candidates)
                    doc["engines"].append(result)
                    for c in result["candidates"]:
                        if c["candidate"]["key"] == "rivet-full-parquet-local" and not c["run"]["error"]:
                            at_n = Run(**c["run"])
                doc["memory"].append(memory_check(bench, eng, args.rows_small, at_n))
                # drop the table so the next engine's run has the page cache to itself
                db.execute(f"DROP TABLE {TABLE}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    doc["bench_wall_s"] = round(time.monotonic() - bench_started, 1)
    with contextlib.suppress(ValueError):
        doc["results_path"] = str(args.results.resolve().relative_to(REPO))
    table = render(doc)
    doc["table"] = table.splitlines()
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
