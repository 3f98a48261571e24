"""Where `rivet run` spends its time: stage timings in-process, then cProfile of the real CLI.

    .venv/bin/python -m bench.profile [--rows 1000000] [--engines postgres,mysql]

Starts its own servers on 127.0.0.1 (the fixtures' start functions), generates the bench table, then per
engine: (1) the floor; (2) the driver alone (ADBC / ConnectorX batches, drained); (3) the source's
stream() (driver + conform casts + rechunk); (4) Parquet zstd and CSV writing of those batches into a
null sink, with and without the digest (XXH3 + MD5); (5) per-column cost of CSV text conversion;
(6) with --cprofile, cProfile of `python -m rivet run` (main thread only: the export runs in a worker
thread, so the stage timings above are the useful part).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from bench.datagen import TABLE, fill_mariadb, fill_postgres
from rivet.formats.sink import DigestSink
from tests.fixtures.databases import DbServer, start_mariadb, start_postgres

REPO = Path(__file__).resolve().parents[1]


class _Discard:
    """A PartUpload that keeps nothing: the sink's own cost, timed without a store."""

    def write(self, data: bytes) -> int:
        return len(data)

    def commit(self, content_md5: bytes | None = None) -> None:
        pass

    def abort(self) -> None:
        pass


class NullSink(DigestSink):
    """The exporter's DigestSink into nowhere; digest=False skips the fingerprint, to time what it costs."""

    def __init__(self, digest: bool) -> None:
        super().__init__(_Discard())
        self._fingerprint = digest
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = super().write(data) if self._fingerprint else len(bytes(data))
        self.size += n
        return n

    def tell(self) -> int:
        return self.size


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def floor_s(eng: str, db: DbServer, work: Path) -> float:
    out = work / "floor.out"
    env = {**os.environ}
    if eng == "postgres":
        env["PGPASSWORD"] = db.password
        url = f"postgresql://{db.user}@{db.host}:{db.port}/{db.database}"
        argv = ["/usr/bin/psql", url, "-X", "-q", "-c", f"\\copy (SELECT * FROM {TABLE}) TO '{out}' CSV"]
        t = time.perf_counter()
        subprocess.run(argv, check=True, env=env)
    else:
        env["MYSQL_PWD"] = db.password
        argv = ["mariadb", "--batch", "--quick", "-h", db.host, "-P", str(db.port), "-u", db.user, db.database]
        t = time.perf_counter()
        with open(out, "wb") as f:
            subprocess.run([*argv, "-e", f"SELECT * FROM {TABLE}"], check=True, env=env, stdout=f)
    took = time.perf_counter() - t
    out.unlink()
    return took


def driver_only(eng: str, db: DbServer, keep: bool = False) -> tuple[float, int, list[Any]]:
    """The bulk driver alone, batches drained (no conform, no writing); `keep` returns the raw batches."""
    kept: list[Any] = []
    rows = 0
    if eng == "postgres":
        import adbc_driver_postgresql.dbapi as adbc_pg

        conn = adbc_pg.connect(db.url, autocommit=True)
        cur = conn.cursor()
        t = time.perf_counter()
        cur.execute(f"SELECT * FROM {TABLE}")
        for b in cur.fetch_record_batch():
            rows += b.num_rows
            if keep:
                kept.append(b)
        took = time.perf_counter() - t
        cur.close()
        conn.close()
        return took, rows, kept
    import connectorx as cx

    url = "mysql" + db.url[len("mysql") :]
    t = time.perf_counter()
    reader = cx.read_sql(url, f"SELECT * FROM {TABLE}", return_type="arrow_stream", batch_size=50_000)
    for b in reader:
        rows += b.num_rows
        if keep:
            kept.append(b)
    return time.perf_counter() - t, rows, kept


def stage_report(eng: str, db: DbServer, work: Path, rows: int) -> list[str]:
    from rivet.config.model import Compression, SourceConfig, SourceType
    from rivet.formats.writer import csv_text, open_writer
    from rivet.sources.factory import open_source
    from rivet.sources.query import q

    lines = [f"== {eng}: {rows:,} rows, stage timings (seconds) =="]
    floor_s(eng, db, work)  # warm
    f1 = floor_s(eng, db, work)
    d, n, _ = driver_only(eng, db)
    f2 = floor_s(eng, db, work)
    floor = (f1 + f2) / 2
    lines.append(f"floor (CLI, mean of 2)                       {floor:7.2f}")
    lines.append(f"driver only, batches drained                 {d:7.2f}  ({d / floor:.2f}x floor, {n:,} rows)")
    src = open_source(SourceConfig(SourceType(eng), _secret(db.url)))
    try:
        sql = f"SELECT * FROM {TABLE}"
        schema = src.describe(q(sql))
        t, batches = timed(lambda: list(src.stream(q(sql), schema, 50_000)))
    finally:
        src.close()
    lines.append(f"source.stream (driver + conform + rechunk)   {t:7.2f}  ({t / floor:.2f}x floor)")
    lines.append(f"  => conform/rechunk overhead                {t - d:7.2f}")
    from rivet.sources.conform import conform_array

    _, _, raw = driver_only(eng, db, keep=True)
    lines.append("conform_array per column (driver type -> target), seconds:")
    for i, f in enumerate(schema):
        ct, _ = timed(lambda i=i, f=f: [conform_array(b.column(i), f.type) for b in raw])
        lines.append(f"  {f.name:<12} {raw[0].schema.field(i).type!s:<28} -> {f.type!s:<28} {ct:6.2f}")
    for fmt_name in ("parquet", "csv"):
        from rivet.config.model import Format

        fmt = Format(fmt_name)
        comp = Compression.ZSTD if fmt_name == "parquet" else Compression.NONE
        for digest in (False, True):
            sink = NullSink(digest)

            def write(fmt: Format = fmt, comp: Compression = comp, sink: NullSink = sink) -> None:
                w = open_writer(fmt, sink, schema, comp)
                for b in batches:
                    w.write_batch(b)
                w.close()

            wt, _ = timed(write)
            tag = "with digest" if digest else "no digest  "
            lines.append(
                f"write {fmt_name:<7} {tag} (null sink)          {wt:7.2f}  ({wt / floor:.2f}x floor, {sink.size / 1e6:.0f} MB)"
            )
    lines.append("CSV text conversion per column (csv_text), seconds:")
    for i, f in enumerate(schema):
        ct, _ = timed(lambda i=i: [csv_text(b.column(i)) for b in batches])
        lines.append(f"  {f.name:<12} {f.type!s:<36} {ct:6.2f}")
    lines.append(f"schema: {schema}")
    return lines


def _secret(url: str) -> Any:
    from rivet.config.model import Secret

    return Secret(url)


def cprofile_cli(eng: str, db: DbServer, work: Path, fmt: str, top: int) -> list[str]:
    run_dir = Path(tempfile.mkdtemp(prefix="prof-", dir=work))
    exp: dict[str, Any] = {"name": "bench", "table": TABLE, "format": fmt}
    exp["destination"] = {"type": "local", "path": str(run_dir / "out")}
    doc = {
        "source": {"type": eng, "url_env": "BENCH_DB_URL"},
        "state": {"path": str(run_dir / "state.db")},
        "exports": [exp],
    }
    cfg = run_dir / "rivet.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    prof = run_dir / "out.prof"
    env = {**os.environ, "BENCH_DB_URL": db.url}
    argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "rivet", "run", "-c", str(cfg)]
    t = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=REPO, capture_output=True)
    took = time.perf_counter() - t
    lines = [f"== {eng}: cProfile of `rivet run` full -> {fmt} (local), {took:.1f}s wall under cProfile =="]
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(str(prof), stream=buf)
        stats.sort_stats(key).print_stats(top)
        text = buf.getvalue()
        body = text[text.find("ncalls") :] if "ncalls" in text else text
        lines.append(f"-- by {key} --")
        lines.extend(line.replace(str(REPO) + "/", "") for line in body.splitlines() if line.strip())
    shutil.rmtree(run_dir, ignore_errors=True)
    return lines


@contextlib.contextmanager
def started(engines: list[str]) -> Iterator[dict[str, DbServer]]:
    dbs: dict[str, DbServer] = {}
    try:
        if "postgres" in engines:
            dbs["postgres"] = start_postgres()
        if "mysql" in engines:
            dbs["mysql"] = start_mariadb()
        yield dbs
    finally:
        for db in dbs.values():
            with contextlib.suppress(Exception):
                db.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.profile")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--engines", default="postgres,mysql")
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--cprofile",
        action="store_true",
        help="also cProfile the CLI (note: it exports in a worker thread, so cProfile sees mostly the wait)",
    )
    args = p.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    work = Path(tempfile.mkdtemp(prefix="rivet-profile-"))
    try:
        with started(engines) as dbs:
            for eng in engines:
                db = dbs[eng]
                (fill_postgres if eng == "postgres" else fill_mariadb)(db, args.rows)
                for line in stage_report(eng, db, work, args.rows):
                    print(line, flush=True)
                if args.cprofile:
                    for fmt in ("parquet", "csv"):
                        for line in cprofile_cli(eng, db, work, fmt, args.top):
                            print(line, flush=True)
                db.execute(f"DROP TABLE {TABLE}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
