"""Peak RSS of `rivet run` variants, interleaved, against databases started once.

    .venv/bin/python -m bench.memory_probe up --rows 5000000 --state /tmp/probe.json   # stays up; SIGTERM stops
    .venv/bin/python -m bench.memory_probe run --state /tmp/probe.json --engines postgres,mysql \
        --formats parquet,csv --sizes 1250000,5000000 --variant base: --variant sys:RIVET_X=1 --repeat 2

`up` starts PostgreSQL and MariaDB on loopback (the test fixtures), fills bench/datagen.py's table and
writes the servers' coordinates to --state, then waits. `run` measures every (engine, format, size,
variant) `--repeat` times in round-robin order (so drift hits every variant alike), each run with a floor
before and after it when --floors is given, and prints wall, wall/floor, peak RSS (/usr/bin/time -f %M),
output bytes and row groups. A size below the table's is read as `SELECT * FROM bench WHERE id <= size`.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datagen import TABLE, count_rows, fill_mariadb, fill_postgres
from bench.run import Bench, Candidate, Engine, Run
from tests.fixtures.databases import DbServer, start_mariadb, start_postgres


def up(args: argparse.Namespace) -> int:
    started: dict[str, DbServer] = {}
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        for name in args.engines.split(","):
            db = start_postgres() if name == "postgres" else start_mariadb()
            started[name] = db
            t0 = time.monotonic()
            (fill_postgres if name == "postgres" else fill_mariadb)(db, args.rows)
            print(f"{name}: {count_rows(db):,} rows in {time.monotonic() - t0:.0f}s", flush=True)
        state = {
            name: {k: getattr(db, k) for k in ("engine", "host", "port", "user", "password", "database")}
            | {"rows": args.rows}
            for name, db in started.items()
        }
        Path(args.state).write_text(json.dumps(state))
        print("ready", flush=True)
        while not stop["now"]:
            time.sleep(1)
    finally:
        for db in started.values():
            db.stop()
        Path(args.state).unlink(missing_ok=True)
    return 0


def run(args: argparse.Namespace) -> int:
    import os

    state = json.loads(Path(args.state).read_text())
    work = Path(tempfile.mkdtemp(prefix="rivet-probe-"))
    bench = Bench(argparse.Namespace(chunk_count=4), work, None)
    variants: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for v in args.variant:
        name, _, rest = v.partition(":")
        env = tuple(tuple(kv.split("=", 1)) for kv in rest.split(",") if kv)
        variants.append((name, env))  # type: ignore[arg-type]
    results: list[dict[str, Any]] = []
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in args.engines.split(","):
        s = state[name]
        db = DbServer(s["engine"], s["host"], s["port"], s["user"], s["password"], s["database"], Path("/nonexistent"))
        eng = Engine(name, db, s["rows"], work, {**base_env, "BENCH_DB_URL": db.url})
        before = eng.floor("floor") if args.floors else None
        for rep in range(args.repeat):
            for fmt in args.formats.split(","):
                for size in [int(x) for x in args.sizes.split(",")]:
                    for vname, env in variants:
                        cand = Candidate(f"{vname}", "rivet", fmt=fmt, env=env)
                        query = None if size >= s["rows"] else f"SELECT * FROM {TABLE} WHERE id <= {size}"
                        r: Run = bench.rivet(eng, cand, vname, query=query)
                        row: dict[str, Any] = {
                            "engine": name,
                            "fmt": fmt,
                            "size": size,
                            "variant": vname,
                            "rep": rep,
                            "wall_s": r.wall_s,
                            "cpu_s": r.cpu_s,
                            "rss_mb": r.rss_mb,
                            "out_bytes": r.out_bytes,
                            "rows": r.rows,
                            "error": (r.error or "")[-300:],
                            "row_groups": (r.extra.get("parquet") or {}).get("row_groups"),
                        }
                        if before is not None:
                            after = eng.floor("floor")
                            row["floor_s"] = round((before.wall_s + after.wall_s) / 2, 3)
                            row["ratio"] = round(r.wall_s / row["floor_s"] * s["rows"] / size, 3)
                            before = after
                        results.append(row)
                        print(json.dumps(row), flush=True)
    print()
    keys = sorted({(r["engine"], r["fmt"], r["size"], r["variant"]) for r in results}, key=str)
    print(f"{'engine':<9}{'fmt':<8}{'size':>9} {'variant':<16}{'rss MB':>16}{'wall s':>14}{'ratio':>7}{'MB out':>9}")
    for k in keys:
        rs = [r for r in results if (r["engine"], r["fmt"], r["size"], r["variant"]) == k]
        rss = "/".join(f"{r['rss_mb']:.0f}" for r in rs)
        wall = "/".join(f"{r['wall_s']:.1f}" for r in rs)
        ratio = statistics.fmean(r["ratio"] for r in rs) if all("ratio" in r for r in rs) else float("nan")
        err = " ERR" if any(r["error"] for r in rs) else ""
        print(
            f"{k[0]:<9}{k[1]:<8}{k[2]:>9} {k[3]:<16}{rss:>16}{wall:>14}{ratio:>7.2f}{rs[0]['out_bytes'] / 1e6:>9.1f}{err}"
        )
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--rows", type=int, default=5_000_000)
    u.add_argument("--engines", default="postgres,mysql")
    u.add_argument("--state", required=True)
    r = sub.add_parser("run")
    r.add_argument("--state", required=True)
    r.add_argument("--engines", default="postgres,mysql")
    r.add_argument("--formats", default="parquet")
    r.add_argument("--sizes", default="5000000")
    r.add_argument("--variant", action="append", default=[], help="name:KEY=VALUE,KEY=VALUE (repeatable)")
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--floors", action="store_true", help="a floor run between candidates (wall ratio)")
    r.add_argument("--results", help="raw rows as JSON")
    args = p.parse_args(argv)
    if args.cmd == "run" and not args.variant:
        args.variant = ["base:"]
    return up(args) if args.cmd == "up" else run(args)


if __name__ == "__main__":
    sys.exit(main())
