"""Bad input: one clear line naming the field or server, the right exit code, nothing half-written,
and no credential in any output of a failing or a passing run."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.csv as pcsv
import pytest
import yaml

from tests.fixtures.databases import DbServer, Namespace
from tests.fixtures.objectstores import S3Server, StoreHandle
from tests.integration.rivet_cli import Result, rivet, write_config


def one_line_error(res: Result) -> str:
    lines = [line for line in res.stderr.splitlines() if line.startswith("rivet: error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def base_export(dest: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "t", "table": "public.nowhere", "destination": dest, **extra}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.update(chunk_sise=10), "exports[0].chunk_sise: unknown key"),
        (lambda e: e.update(mode=7), "exports[0].mode: invalid value 7"),
        (lambda e: e.pop("destination"), "exports[0].destination: is required"),
        (lambda e: e.update(parallel="two"), "exports[0].parallel: must be an integer"),
        (lambda e: e["destination"].update(path="/tmp/{nope}/"), "unknown placeholder {nope}"),
        (
            lambda e: e.update(mode="chunked", chunk_column="id", destination={"type": "stdout"}),
            "exports[0].destination.type: stdout is streaming only",
        ),
        (
            lambda e: e.update(
                destination={
                    "type": "azure",
                    "account_name": "a",
                    "container": "c",
                    "account_key_env": "K",
                    "sas_token_env": "S",
                }
            ),
            "account_key_env and sas_token_env are mutually exclusive",
        ),
    ],
)
def test_config_errors_name_the_field_and_exit_1(mutate: Any, expected: str, tmp_path: Path) -> None:
    exp = base_export({"type": "local", "path": str(tmp_path / "out")})
    mutate(exp)
    cfg = write_config(tmp_path / "rivet.yaml", "postgresql://u:p@127.0.0.1:1/db", [exp])
    res = rivet("run", "-c", str(cfg), db_url="postgresql://u:p@127.0.0.1:1/db")
    assert res.code == 1, res.output
    assert expected in one_line_error(res)
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    res = rivet("run", "--no-such-flag")
    assert res.code == 2 and "rivet: error:" in res.stderr
    assert rivet("chunk", "-c", "x.yaml").code == 2


def test_source_failures_write_nothing_and_leak_nothing(
    store: StoreHandle, pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.t (id int PRIMARY KEY, v text)")
    pg.execute(f"INSERT INTO {pg_schema}.t SELECT g, 'x' FROM generate_series(1, 100) g")
    dest = store.destination_yaml("out/{export}/")
    wrong_pw = pg.url.replace(pg.password, "not-the-password-123")
    cases = [
        ("bad SQL", pg.url, {"query": f"SELECT nope FROM {pg_schema}.t"}, "nope", 1),
        ("wrong password", wrong_pw, {"table": f"{pg_schema}.t"}, "authentication failed", 1),
        (
            "unreachable",
            f"postgresql://rivet:{pg.password}@127.0.0.1:1/rivet",
            {"table": f"{pg_schema}.t"},
            "127.0.0.1:1",
            3,  # unreachable: retryable
        ),
    ]
    outputs: list[str] = []
    for name, url, rel, expected, code in cases:
        exp = {"name": "t", **rel, "destination": dest}
        cfg = write_config(tmp_path / f"{name.replace(' ', '_')}.yaml", url, [exp])
        res = rivet("run", "-c", str(cfg), env=store.env, db_url=url)
        assert res.code == code, (name, res.output)
        assert expected in one_line_error(res), (name, res.output)
        assert store.open("out/t/").list() == [], f"{name}: something was written"
        outputs.append(res.output)
    ok_cfg = write_config(tmp_path / "ok.yaml", pg.url, [{"name": "t", "table": f"{pg_schema}.t", "destination": dest}])
    ok = rivet("run", "-c", str(ok_cfg), env=store.env, db_url=pg.url)
    assert ok.code == 0, ok.output
    outputs.append(ok.output)
    stored = [store.open("out/t/").get_bytes(k) or b"" for k in ("manifest.json", "_SUCCESS")]
    state = (tmp_path / "state.db").read_bytes()
    for secret in [pg.password, "not-the-password-123", *store.secrets]:
        for text in outputs:
            assert secret not in text
        for blob in [*stored, state]:
            assert secret.encode() not in blob


def test_missing_bucket_is_named(s3_server: S3Server, pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.t (id int)")
    dest = {
        "type": "s3",
        "bucket": "no-such-bucket-here",
        "endpoint": s3_server.endpoint,
        "region": "us-east-1",
        "access_key_env": "K",
        "secret_key_env": "S",
    }
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, [{"name": "t", "table": f"{pg_schema}.t", "destination": dest}])
    res = rivet("run", "-c", str(cfg), env={"K": s3_server.access_key, "S": s3_server.secret_key}, db_url=pg.url)
    assert res.code == 1
    assert "no-such-bucket-here" in one_line_error(res) and s3_server.secret_key not in res.output


def test_unset_credential_env_is_named(s3_server: S3Server, pg: DbServer, tmp_path: Path) -> None:
    dest = {
        "type": "s3",
        "bucket": "b",
        "endpoint": s3_server.endpoint,
        "access_key_env": "NOPE_KEY",
        "secret_key_env": "NOPE_SECRET",
    }
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, [{"name": "t", "table": "t", "destination": dest}])
    res = rivet("run", "-c", str(cfg), db_url=pg.url)
    assert res.code == 1 and "NOPE_KEY" in one_line_error(res)


def test_unsupported_type_fails_before_writing(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.t (id int, dur interval)")
    pg.execute(f"INSERT INTO {pg_schema}.t VALUES (1, '1 day')")
    out = tmp_path / "out"
    cfg = write_config(
        tmp_path / "rivet.yaml",
        pg.url,
        [{"name": "t", "table": f"{pg_schema}.t", "destination": {"type": "local", "path": str(out)}}],
    )
    res = rivet("run", "-c", str(cfg), db_url=pg.url)
    assert res.code == 1
    line = one_line_error(res)
    assert '"dur"' in line or ("dur" in line and "interval" in line)
    assert not out.exists() or not any(out.iterdir())


def test_stdout_streams_csv_with_the_summary_on_stderr(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.t (id int, v text)")
    pg.execute(f"INSERT INTO {pg_schema}.t SELECT g, 'v' || g FROM generate_series(1, 50) g")
    cfg = write_config(
        tmp_path / "rivet.yaml",
        pg.url,
        [{"name": "t", "table": f"{pg_schema}.t", "format": "csv", "destination": {"type": "stdout"}}],
    )
    res = rivet("run", "-c", str(cfg), db_url=pg.url)
    assert res.code == 0, res.output
    table = pcsv.read_csv(io.BytesIO(res.stdout.encode()))
    assert table.num_rows == 50 and table.column_names == ["id", "v"]
    assert '"rows":50' in res.stderr


def test_incremental_mode_exports_new_rows_from_the_boundary_value(
    pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    """Each run reads from the last certified cursor value inclusive: the boundary row comes again."""
    pg.execute(f"CREATE TABLE {pg_schema}.ev (id int PRIMARY KEY, v text)")
    pg.execute(f"INSERT INTO {pg_schema}.ev SELECT g, 'a' FROM generate_series(1, 30) g")
    exp = {
        "name": "ev",
        "table": f"{pg_schema}.ev",
        "mode": "incremental",
        "cursor_column": "id",
        "format": "csv",
        "destination": {"type": "local", "path": str(tmp_path / "out/{run_id}/")},
    }
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, [exp])
    first = rivet("run", "-c", str(cfg), "--run-id", "one", db_url=pg.url)
    assert first.code == 0 and first.json["exports"][0]["rows"] == 30, first.output
    pg.execute(f"INSERT INTO {pg_schema}.ev SELECT g, 'b' FROM generate_series(31, 45) g")
    second = rivet("run", "-c", str(cfg), "--run-id", "two", db_url=pg.url)
    assert second.code == 0 and second.json["exports"][0]["rows"] == 16, second.output
    ids = pcsv.read_csv(tmp_path / "out/two/part-000001.csv").column("id").to_pylist()
    assert sorted(ids) == list(range(30, 46))
    third = rivet("run", "-c", str(cfg), "--run-id", "three", db_url=pg.url)
    assert third.code == 0 and third.json["exports"][0]["rows"] == 1
    doc = json.loads((tmp_path / "out/three/manifest.json").read_text())
    assert doc["part_count"] == 1 and (tmp_path / "out/three/_SUCCESS").exists()
    assert doc["cursor"] == {"column": "id", "low": 45, "low_inclusive": True, "high": 45}


def test_time_window_mode_takes_the_window_before_the_run_date(
    pg: DbServer, pg_schema: Namespace, tmp_path: Path
) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.ev (id int, at timestamp)")
    pg.execute(
        f"INSERT INTO {pg_schema}.ev SELECT g, timestamp '2026-11-01' + g * interval '1 day'"
        " FROM generate_series(0, 29) g"
    )
    exp = {
        "name": "ev",
        "table": f"{pg_schema}.ev",
        "mode": "time_window",
        "time_column": "at",
        "days_window": 3,
        "format": "csv",
        "destination": {"type": "local", "path": str(tmp_path / "out/{date}/")},
    }
    cfg = write_config(tmp_path / "rivet.yaml", pg.url, [exp])
    res = rivet("run", "-c", str(cfg), "--date", "2026-11-20", db_url=pg.url)
    assert res.code == 0, res.output
    ids = sorted(pcsv.read_csv(tmp_path / "out/2026-11-20/part-000001.csv").column("id").to_pylist())
    assert ids == [16, 17, 18, 19]  # 2026-11-17 .. 2026-11-20 inclusive of the run date


def test_config_is_yaml_loaded_with_params(pg: DbServer, pg_schema: Namespace, tmp_path: Path) -> None:
    pg.execute(f"CREATE TABLE {pg_schema}.t (id int)")
    pg.execute(f"INSERT INTO {pg_schema}.t VALUES (1)")
    doc = {
        "source": {"type": "postgres", "url_env": "RIVET_TEST_DB_URL"},
        "exports": [{"name": "t", "table": "${TABLE}", "destination": {"type": "local", "path": str(tmp_path / "o")}}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    res = rivet("run", "-c", str(tmp_path / "c.yaml"), "--param", f"TABLE={pg_schema}.t", db_url=pg.url)
    assert res.code == 0, res.output
