"""The strict config loader: every error names the field path and the fix."""

from __future__ import annotations

import textwrap

import pytest

from rivet.config import DestinationType, Mode, load_config_text
from rivet.errors import ConfigError

BASE = """
source:
  type: postgres
  url_env: DB_URL
exports:
  - name: orders
    table: public.orders
    mode: chunked
    chunk_column: id
    chunk_size: 1000
    parallel: 2
    destination:
      type: s3
      bucket: lake
      prefix: "exports/{date}/{export}/"
"""
ENV = {"DB_URL": "postgresql://u:hunter2@127.0.0.1:5432/db"}


def load(text: str, env: dict[str, str] | None = None, **kw: object) -> object:
    return load_config_text(textwrap.dedent(text), env=env if env is not None else ENV, **kw)  # type: ignore[arg-type]


def error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return str(info.value)


def test_valid_config_parses_into_typed_model() -> None:
    cfg = load(BASE)
    exp = cfg.exports[0]  # type: ignore[attr-defined]
    assert exp.mode is Mode.CHUNKED and exp.chunk_size == 1000 and exp.parallel == 2
    assert exp.destination.type is DestinationType.S3 and exp.destination.bucket == "lake"
    assert cfg.source.url.reveal() == ENV["DB_URL"]  # type: ignore[attr-defined]


def test_secret_never_prints_itself() -> None:
    cfg = load(BASE)
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg.source)  # type: ignore[attr-defined]


def test_unknown_key_suggests_the_closest_name() -> None:
    msg = error(BASE.replace("chunk_size: 1000", "chunk_sise: 1000"))
    assert msg.startswith("exports[0].chunk_sise: unknown key") and "did you mean `chunk_size`" in msg


def test_unknown_destination_key_names_its_path() -> None:
    msg = error(BASE.replace("bucket: lake", "buckt: lake"))
    assert "exports[0].destination.buckt" in msg and "bucket" in msg


def test_field_valid_only_for_another_destination_type_is_rejected() -> None:
    msg = error(BASE.replace("bucket: lake", "bucket: lake\n      account_key_env: K"))
    assert "exports[0].destination.account_key_env" in msg


def test_wrong_type_names_the_field_and_value() -> None:
    msg = error(BASE.replace("chunk_size: 1000", "chunk_size: lots"))
    assert "exports[0].chunk_size: must be an integer" in msg


def test_invalid_enum_suggests_a_value() -> None:
    msg = error(BASE.replace("mode: chunked", "mode: chunkd"))
    assert "exports[0].mode: invalid value 'chunkd'" in msg and "chunked" in msg


def test_missing_env_var_for_url_is_named() -> None:
    msg = error(BASE, env={})
    assert "source.url_env" in msg and "DB_URL" in msg


def test_validate_can_load_without_source_secrets() -> None:
    cfg = load(BASE, env={}, need_source=False)
    assert cfg.exports[0].name == "orders"  # type: ignore[attr-defined]


def test_interpolation_from_params_then_env() -> None:
    text = BASE.replace("bucket: lake", "bucket: ${BUCKET}")
    assert load(text, env={**ENV, "BUCKET": "env"}, params={"BUCKET": "param"}).exports[0].destination.bucket == "param"  # type: ignore[attr-defined]
    msg = error(text)
    assert "exports[0].destination.bucket" in msg and "${BUCKET} is not set" in msg


def test_table_and_query_are_exclusive() -> None:
    msg = error(BASE.replace("table: public.orders", "table: public.orders\n    query: SELECT 1"))
    assert "exports[0]: set exactly one of `table` or `query`" in msg


def test_chunk_settings_only_with_chunked_mode() -> None:
    msg = error(BASE.replace("mode: chunked", "mode: full").replace("    parallel: 2\n", ""))
    assert "exports[0].chunk_column: only applies to mode chunked" in msg


def test_unknown_placeholder_is_an_error() -> None:
    msg = error(BASE.replace("{export}", "{exprot}"))
    assert "exports[0].destination.prefix: unknown placeholder {exprot}" in msg


def test_stdout_with_chunked_mode_is_refused() -> None:
    text = BASE.replace('type: s3\n      bucket: lake\n      prefix: "exports/{date}/{export}/"', "type: stdout")
    msg = error(text)
    assert "exports[0].destination.type: stdout is streaming only" in msg


def test_azure_key_and_sas_are_refused_naming_both() -> None:
    text = BASE.replace(
        'type: s3\n      bucket: lake\n      prefix: "exports/{date}/{export}/"',
        "type: azure\n      account_name: acct\n      container: c\n      account_key_env: K\n      sas_token_env: S",
    )
    msg = error(text)
    assert "account_key_env and sas_token_env are mutually exclusive" in msg


def test_azure_accepts_the_08_bucket_spelling() -> None:
    text = BASE.replace(
        'type: s3\n      bucket: lake\n      prefix: "exports/{date}/{export}/"',
        "type: azure\n      account_name: acct\n      bucket: c\n      allow_anonymous: true",
    )
    assert load(text).exports[0].destination.container == "c"  # type: ignore[attr-defined]


def test_csv_with_compression_is_refused() -> None:
    msg = error(BASE.replace("    parallel: 2\n", "    parallel: 2\n    format: csv\n    compression: zstd\n"))
    assert "exports[0].compression: applies to parquet only" in msg


def test_duplicate_export_names_are_refused() -> None:
    text = BASE + BASE.split("exports:\n", 1)[1]
    assert "exports[1].name: duplicate export name 'orders'" in error(text)


def test_host_fields_build_a_url_with_the_password_from_env() -> None:
    text = BASE.replace(
        "url_env: DB_URL", "host: 127.0.0.1\n  port: 5433\n  user: app\n  database: shop\n  password_env: PW"
    )
    cfg = load(text, env={"PW": "p@ss/w"})
    assert cfg.source.url.reveal() == "postgresql://app:p%40ss%2Fw@127.0.0.1:5433/shop"  # type: ignore[attr-defined]


def test_invalid_yaml_reports_line() -> None:
    assert "line" in error("source: [unclosed")


# --- source.tuning: absent means default, 0 means what it says ----------------------------------

TUNED = BASE.replace("  url_env: DB_URL\n", "  url_env: DB_URL\n  tuning:\n{tuning}")


def tuning(lines: str) -> object:
    cfg = load(TUNED.replace("{tuning}", textwrap.indent(textwrap.dedent(lines), "    ")))
    return cfg.source.tuning  # type: ignore[attr-defined]


def test_tuning_defaults_when_absent() -> None:
    t = load(BASE).source.tuning  # type: ignore[attr-defined]
    assert (t.batch_size, t.statement_timeout_s, t.max_retries) == (50_000, 300, 3)
    t = tuning("batch_size: 10\n")
    assert (t.batch_size, t.statement_timeout_s, t.max_retries) == (10, 300, 3)  # type: ignore[attr-defined]
    t = tuning("max_retries: null\n")
    assert t.max_retries == 3  # type: ignore[attr-defined]


def test_statement_timeout_zero_means_no_timeout_not_the_default() -> None:
    t = tuning("statement_timeout_s: 0\n")
    assert t.statement_timeout_s == 0 and t.max_retries == 3  # type: ignore[attr-defined]


def test_max_retries_zero_means_one_attempt_not_the_default() -> None:
    t = tuning("max_retries: 0\n")
    assert t.max_retries == 0 and t.statement_timeout_s == 300  # type: ignore[attr-defined]


def test_all_zeros_together() -> None:
    t = tuning("statement_timeout_s: 0\nmax_retries: 0\nbatch_size: 1\n")
    assert (t.batch_size, t.statement_timeout_s, t.max_retries) == (1, 0, 0)  # type: ignore[attr-defined]


def test_batch_size_zero_is_an_error_naming_the_field() -> None:
    msg = error(TUNED.replace("{tuning}", "    batch_size: 0\n"))
    assert msg.startswith("source.tuning.batch_size: must be at least 1, got 0"), msg


@pytest.mark.parametrize("field", ["statement_timeout_s", "max_retries"])
def test_negative_tuning_values_are_refused(field: str) -> None:
    msg = error(TUNED.replace("{tuning}", f"    {field}: -1\n"))
    assert msg.startswith(f"source.tuning.{field}: must be at least 0, got -1"), msg


@pytest.mark.parametrize("value", ["'5'", "true", "1.5"])
def test_tuning_values_must_be_integers(value: str) -> None:
    msg = error(TUNED.replace("{tuning}", f"    max_retries: {value}\n"))
    assert msg.startswith("source.tuning.max_retries: must be an integer"), msg


def test_operator_rendering_keeps_zero_tuning_values() -> None:
    from rivet_operator.api.spec import check_spec, render_config

    spec = {
        "source": {
            "type": "postgres",
            "urlFrom": {"secretKeyRef": {"name": "db", "key": "url"}},
            "tuning": {"statementTimeoutS": 0, "maxRetries": 0, "batchSize": 1},
        },
        "table": "public.t",
        "destination": {"type": "s3", "bucket": "b"},
        "maxChunkRetries": 0,
    }
    rendered = render_config("orders", spec)
    assert rendered["source"]["tuning"] == {"statement_timeout_s": 0, "max_retries": 0, "batch_size": 1}
    t = check_spec("orders", spec).source.tuning
    assert (t.batch_size, t.statement_timeout_s, t.max_retries) == (1, 0, 0)


def test_crd_tuning_bounds_accept_zero_where_zero_means_something() -> None:
    from rivet_operator.api.crds import export_spec

    spec = export_spec()["properties"]
    tuning_props = spec["source"]["properties"]["tuning"]["properties"]
    assert tuning_props["statementTimeoutS"]["minimum"] == 0
    assert tuning_props["maxRetries"]["minimum"] == 0
    assert tuning_props["batchSize"]["minimum"] == 1
    assert spec["maxChunkRetries"]["minimum"] == 0


# --- source.tls and read_timeout_s ----------------------------------------------------------------


def tls(lines: str, engine: str = "postgres") -> object:
    text = BASE.replace("  url_env: DB_URL\n", "  url_env: DB_URL\n  tls:\n" + textwrap.indent(lines, "    "))
    if engine == "mysql":
        text = text.replace("type: postgres", "type: mysql")
        return load(text, {"DB_URL": "mysql://u:hunter2@127.0.0.1:3306/db"}).source.tls  # type: ignore[attr-defined]
    return load(text).source.tls  # type: ignore[attr-defined]


def tls_error(lines: str) -> str:
    with pytest.raises(ConfigError) as info:
        tls(lines)
    return str(info.value)


def test_tls_is_absent_by_default_so_the_urls_own_settings_apply() -> None:
    t = load(BASE).source.tls  # type: ignore[attr-defined]
    assert t.mode is None and t.ca_file is None


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_tls_modes_parse(engine: str) -> None:
    from rivet.config.model import TlsMode

    assert tls("mode: require\n", engine).mode is TlsMode.REQUIRE  # type: ignore[attr-defined]
    assert tls("mode: disable\n", engine).mode is TlsMode.DISABLE  # type: ignore[attr-defined]
    full = tls("mode: verify-full\nca_file: /etc/rivet/ca/ca.crt\n", engine)
    assert (full.mode, full.ca_file) == (TlsMode.VERIFY_FULL, "/etc/rivet/ca/ca.crt")  # type: ignore[attr-defined]


def test_a_verifying_mode_needs_a_ca_file() -> None:
    msg = tls_error("mode: verify-ca\n")
    assert msg.startswith("source.tls.ca_file: is required for mode verify-ca"), msg
    assert "ca-certificates.crt" in msg


@pytest.mark.parametrize("mode", ["require", "disable"])
def test_a_ca_file_without_a_verifying_mode_is_refused(mode: str) -> None:
    msg = tls_error(f"mode: {mode}\nca_file: /ca.pem\n")
    assert msg.startswith("source.tls.ca_file: only applies to mode verify-ca or verify-full"), msg


def test_tls_mode_typos_and_unknown_keys_are_named() -> None:
    assert "did you mean `verify-full`" in tls_error("mode: verify_full\nca_file: /ca.pem\n")
    assert tls_error("mode: require\nca: /ca.pem\n").startswith("source.tls.ca: unknown key")
    assert tls_error("ca_file: /ca.pem\n").startswith("source.tls.mode: is required")


def test_read_timeout_defaults_above_the_statement_timeout() -> None:
    t = load(BASE).source.tuning  # type: ignore[attr-defined]
    assert t.read_timeout_s is None and t.read_timeout == 360  # statement_timeout_s 300 + a minute
    assert tuning("statement_timeout_s: 60\n").read_timeout == 300  # type: ignore[attr-defined]
    assert tuning("statement_timeout_s: 3600\n").read_timeout == 3660  # type: ignore[attr-defined]
    assert tuning("statement_timeout_s: 0\n").read_timeout == 300  # type: ignore[attr-defined]


def test_read_timeout_as_configured_and_zero_means_never() -> None:
    assert tuning("read_timeout_s: 5\n").read_timeout == 5  # type: ignore[attr-defined]
    assert tuning("read_timeout_s: 0\n").read_timeout == 0  # type: ignore[attr-defined]
    msg = error(TUNED.replace("{tuning}", "    read_timeout_s: -1\n"))
    assert msg.startswith("source.tuning.read_timeout_s: must be at least 0, got -1"), msg


def test_env_int_knobs_fall_back_on_blank_or_nonsense_and_are_raised_to_their_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rivet.config.env import env_int

    monkeypatch.delenv("RIVET_TEST_KNOB", raising=False)
    assert env_int("RIVET_TEST_KNOB", 7, 1) == 7
    for raw, expected in (("", 7), ("  ", 7), ("x", 7), ("1.5", 7), (" 12 ", 12), ("0", 1), ("-4", 1), ("3", 3)):
        monkeypatch.setenv("RIVET_TEST_KNOB", raw)
        assert env_int("RIVET_TEST_KNOB", 7, 1) == expected, raw
