"""What keeps an export's memory small before any row is read: a MariaDB export never loads PostgreSQL's
drivers, and the allocator threshold can be set or turned off. Each check runs in a fresh interpreter,
because imports and mallopt are per process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip()


def test_a_mariadb_export_path_never_imports_the_postgres_drivers() -> None:
    loaded = run_python(
        """
        import sys
        import rivet.commands.run, rivet.engine.pipeline, rivet.engine.fastpath
        from rivet.sources import mysql
        from rivet.engine import fastpath
        fastpath.tune_memory()
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'adbc_driver_postgresql')
                     or m in ('rivet.sources.postgres', 'rivet.sources.pg_copy', 'rivet.sources.pg_parallel')))
        """
    )
    assert loaded == "[]"


def test_the_postgres_fast_paths_still_recognise_a_postgres_source() -> None:
    out = run_python(
        """
        from rivet.config.model import SourceType
        from rivet.engine import fastpath
        from rivet.sources.postgres import PostgresSource
        pg = PostgresSource.__new__(PostgresSource)
        pg.engine = SourceType.POSTGRES
        class Other:
            engine = SourceType.MYSQL
        print(fastpath._postgres(pg) is pg, fastpath._postgres(Other()) is None)
        """
    )
    assert out == "True True"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", 256 * 1024), ("0", 0), ("1048576", 1048576), ("-5", 0), ("lots", 256 * 1024)],
)
def test_the_mmap_threshold_setting(raw: str, expected: int) -> None:
    out = run_python(
        "from rivet.engine import fastpath; print(fastpath._mmap_threshold())",
        RIVET_MALLOC_MMAP_THRESHOLD=raw,
    )
    assert int(out) == expected


def test_large_blocks_are_returned_to_the_system_once_freed() -> None:
    """With the threshold set, freeing many 1 MiB buffers gives their pages back; glibc's default would
    have raised its threshold after the first free and kept later ones in a heap it cannot shrink."""
    code = """
        import ctypes, resource
        from rivet.engine import fastpath
        fastpath.tune_memory()
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.free.argtypes = [ctypes.c_void_p]
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize() // 2**20
        first = libc.malloc(1 << 20); libc.free(first)   # the free that raises glibc's dynamic threshold
        before = rss()
        blocks = []
        for _ in range(200):
            p = libc.malloc(1 << 20); ctypes.memset(p, 1, 1 << 20); blocks.append(p)
        # A live block above them pins the heap top, as live objects do: larger than any free chunk the
        # interpreter may have left, so it comes from the top of the heap (glibc default) or a mapping.
        keep = libc.malloc(900_000); ctypes.memset(keep, 1, 900_000)
        for p in blocks:
            libc.free(p)
        print(rss() - before)
        """
    assert int(run_python(code)) < 20
    if sys.platform.startswith("linux"):  # the test would pass vacuously if glibc gave the pages back anyway
        assert int(run_python(code, RIVET_MALLOC_MMAP_THRESHOLD="0")) > 150
