"""The benchmark table: N rows x 12 columns, generated server-side in PostgreSQL and MariaDB.

Columns (PostgreSQL / MariaDB): bigint id, int, text, numeric(12,2), double, int, nullable text,
timestamptz / timestamp, timestamp / datetime, boolean / tinyint(1), uuid / char(36), jsonb / json.
MariaDB's uuid is char(36): the engine maps it to Utf8 (mysql_types.py), as it does any CHAR column.
"""

from __future__ import annotations

import time

from tests.fixtures.databases import DbServer

TABLE = "bench"

PG_DDL = f"""
CREATE TABLE {TABLE} (
    id bigint PRIMARY KEY,
    qty integer NOT NULL,
    name text NOT NULL,
    amount numeric(12,2) NOT NULL,
    score double precision NOT NULL,
    category integer NOT NULL,
    note text,
    created_at timestamptz NOT NULL,
    local_ts timestamp NOT NULL,
    active boolean NOT NULL,
    uid uuid NOT NULL,
    payload jsonb NOT NULL
)
"""

PG_FILL = f"""
INSERT INTO {TABLE}
SELECT g,
       (g % 100000)::int,
       'customer-' || (g % 50000) || '-' || left(md5(g::text), 8),
       ((g % 1000003) * 1.37)::numeric(12,2),
       g * 0.000123 + (g % 7) * 0.5,
       (g % 17)::int,
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || (g % 997) END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' + (g % 1000) * interval '1 microsecond',
       timestamp '2024-01-01 00:00:00' + g * interval '2 second',
       g % 3 = 0,
       md5(g::text)::uuid,
       jsonb_build_object('k', g % 1000, 'tag', 't' || (g % 37), 'ok', g % 2 = 0, 'vals', jsonb_build_array(g % 3, g % 11))
FROM generate_series({{lo}}::bigint, {{hi}}::bigint) AS g
"""

MY_DDL = f"""
CREATE TABLE {TABLE} (
    id bigint NOT NULL PRIMARY KEY,
    qty int NOT NULL,
    name varchar(64) NOT NULL,
    amount decimal(12,2) NOT NULL,
    score double NOT NULL,
    category int NOT NULL,
    note varchar(64) NULL,
    created_at timestamp NOT NULL DEFAULT '2000-01-01 00:00:00',
    local_ts datetime NOT NULL,
    active tinyint(1) NOT NULL,
    uid char(36) CHARACTER SET ascii NOT NULL,
    payload json NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

# {src} yields one column `seq` over lo..hi (the Sequence engine, or a doubling fallback table).
MY_FILL = f"""
INSERT INTO {TABLE}
SELECT seq,
       seq % 100000,
       CONCAT('customer-', seq % 50000, '-', LEFT(MD5(seq), 8)),
       CAST((seq % 1000003) * 1.37 AS DECIMAL(12,2)),
       seq * 0.000123 + (seq % 7) * 0.5,
       seq % 17,
       IF(seq % 5 = 0, NULL, CONCAT('note ', seq % 997)),
       TIMESTAMPADD(SECOND, seq, TIMESTAMP '2024-01-01 00:00:00'),
       TIMESTAMPADD(SECOND, seq * 2, TIMESTAMP '2024-01-01 00:00:00'),
       seq % 3 = 0,
       INSERT(INSERT(INSERT(INSERT(MD5(seq), 9, 0, '-'), 14, 0, '-'), 19, 0, '-'), 24, 0, '-'),
       JSON_OBJECT('k', seq % 1000, 'tag', CONCAT('t', seq % 37), 'ok', seq % 2 = 0, 'vals', JSON_ARRAY(seq % 3, seq % 11))
FROM {{src}}
"""

PG_SLICE = 1_000_000  # one INSERT per million rows keeps WAL and memory per statement moderate


def fill_postgres(db: DbServer, rows: int) -> float:
    started = time.monotonic()
    db.execute(PG_DDL)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            for lo in range(1, rows + 1, PG_SLICE):
                cur.execute(PG_FILL.format(lo=lo, hi=min(lo + PG_SLICE - 1, rows)))
        conn.execute(f"VACUUM (ANALYZE, FREEZE) {TABLE}")
    finally:
        conn.close()
    return time.monotonic() - started


def fill_mariadb(db: DbServer, rows: int) -> float:
    started = time.monotonic()
    db.execute(MY_DDL)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION unique_checks = 0")
            try:
                cur.execute("SELECT seq FROM seq_1_to_3")  # the Sequence engine (built into MariaDB)
                use_sequence = True
            except Exception:
                use_sequence = False
            if use_sequence:
                step = 1_000_000
                for lo in range(1, rows + 1, step):
                    hi = min(lo + step - 1, rows)
                    cur.execute(MY_FILL.format(src=f"seq_{lo}_to_{hi}"))
            else:  # doubling: a numbers table 1..rows, then one INSERT ... SELECT
                cur.execute("CREATE TABLE bench_nums (seq bigint PRIMARY KEY) ENGINE=InnoDB")
                cur.execute("INSERT INTO bench_nums VALUES (1)")
                have = 1
                while have < rows:
                    cur.execute(
                        f"INSERT INTO bench_nums SELECT seq + {have} FROM bench_nums WHERE seq + {have} <= {rows}"
                    )
                    have = min(have * 2, rows)
                cur.execute(MY_FILL.format(src="bench_nums"))
                cur.execute("DROP TABLE bench_nums")
            cur.execute(f"ANALYZE TABLE {TABLE}")
            cur.fetchall()
    finally:
        conn.close()
    return time.monotonic() - started


def count_rows(db: DbServer) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {TABLE}")[0][0])
