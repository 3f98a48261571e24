"""Rivet 0.8 keys (issue #20 item 3): each one maps to our behaviour or is refused with a one-line hint."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
import xxhash
import yaml

from rivet.config import Compression, RivetConfig, Tuning, load_config, load_config_text
from rivet.config import rivet08 as keys
from rivet.engine import rivet08
from rivet.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "rivet08"
ENV = {
    "DB_URL": "postgresql://u:pw@127.0.0.1:5432/db",
    "DATABASE_URL": "postgresql://u:pw@127.0.0.1:5432/db",
    "MYSQL_DATABASE_URL": "mysql://u:pw@127.0.0.1:3306/db",
}


def config(export: str = "", source: str = "", root: str = "") -> str:
    """A config whose source, first export and root get the YAML snippets given."""
    doc: dict[str, object] = {
        "source": {"type": "postgres", "url_env": "DB_URL", **(yaml.safe_load(source) or {})},
        "exports": [
            {
                "name": "orders",
                "table": "public.orders",
                "destination": {"type": "local", "path": "/tmp/out"},
                **(yaml.safe_load(export) or {}),
            }
        ],
        **(yaml.safe_load(root) or {}),
    }
    return yaml.safe_dump(doc, sort_keys=False)


def load(export: str = "", source: str = "", root: str = "") -> RivetConfig:
    return load_config_text(config(export, source, root), env=ENV)


def error(export: str = "", source: str = "", root: str = "") -> str:
    with pytest.raises(ConfigError) as info:
        load(export, source, root)
    return str(info.value)


# -- upstream's example configs ------------------------------------------------------------------------

REFUSED_EXAMPLES = {"pg_time_window_gcs.yaml": "exports[0].max_file_size: is a Rivet 0.8 key"}


def env_for(name: str) -> dict[str, str]:
    """The examples read DATABASE_URL for either engine."""
    return {**ENV, "DATABASE_URL": ENV["MYSQL_DATABASE_URL"]} if name.startswith("mysql") else ENV


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.yaml")))
def test_every_upstream_example_loads_or_names_the_one_key_to_change(name: str) -> None:
    path = FIXTURES / name
    if name in REFUSED_EXAMPLES:
        with pytest.raises(ConfigError) as info:
            load_config(path, env=env_for(name))
        assert str(info.value).startswith(REFUSED_EXAMPLES[name])
        assert "\n" not in str(info.value)
        return
    cfg = load_config(path, env=env_for(name))
    assert cfg.exports


def test_the_ten_upstream_examples_are_all_here() -> None:
    assert len(list(FIXTURES.glob("*.yaml"))) == 10


def test_upstream_chunked_example_maps_tuning_checkpoint_and_attempts() -> None:
    cfg = load_config(FIXTURES / "pg_chunked_s3.yaml", env=ENV)
    assert cfg.source.tuning == Tuning(
        batch_size=10_000, statement_timeout_s=300, max_retries=3, throttle_ms=50, profile="balanced"
    )
    exp = cfg.exports[0]
    # export tuning over source tuning over the balanced profile; chunk_max_attempts 3 = 2 retries
    assert exp.tuning == Tuning(
        batch_size=5_000, statement_timeout_s=300, max_retries=2, throttle_ms=100, profile="balanced"
    )
    assert cfg.for_export(exp).source.tuning == exp.tuning


def test_upstream_date_chunked_example_chunks_in_days() -> None:
    cfg = load_config(FIXTURES / "pg_date_chunked_local.yaml", env=ENV)
    by_year, by_month = cfg.exports
    assert (by_year.chunk_size, by_year.chunk_by_days) == (365, 365)
    assert (by_month.chunk_size, by_month.chunk_by_days, by_month.parallel) == (30, 30, 4)


def test_upstream_examples_meta_columns_and_quality() -> None:
    full = load_config(FIXTURES / "pg_full_local.yaml", env=ENV).exports[0]
    assert full.meta_columns == (True, False)
    inc = load_config(FIXTURES / "mysql_incremental_local.yaml", env=env_for("mysql")).exports[0]
    assert inc.quality is not None
    assert (inc.quality.row_count_min, inc.quality.unique_columns) == (0, ("id",))


# -- tuning profiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["safe", "balanced", "fast"])
def test_profiles_set_our_tuning_fields(profile: str) -> None:
    tuning = load(source=f"tuning: {{profile: {profile}}}").source.tuning
    assert tuning == Tuning(profile=profile, **keys.PROFILES[profile])


def test_profile_values_are_documented_as_mapped() -> None:
    assert keys.PROFILES["safe"] == {
        "batch_size": 2_000,
        "statement_timeout_s": 120,
        "max_retries": 10,
        "throttle_ms": 500,
    }
    assert keys.PROFILES["fast"]["throttle_ms"] == 0 and keys.PROFILES["fast"]["statement_timeout_s"] == 0


def test_no_profile_keeps_our_defaults() -> None:
    assert load().source.tuning == Tuning()
    assert load().exports[0].tuning is None


def test_given_fields_win_over_the_profile() -> None:
    tuning = load(source="tuning: {profile: safe, batch_size: 7, max_retries: 0}").source.tuning
    assert (tuning.batch_size, tuning.max_retries, tuning.throttle_ms) == (7, 0, 500)


def test_export_tuning_inherits_source_fields_and_profile() -> None:
    cfg = load(source="tuning: {profile: safe, batch_size: 100}", export="tuning: {throttle_ms: 5}")
    assert cfg.exports[0].tuning == Tuning(
        batch_size=100, statement_timeout_s=120, max_retries=10, throttle_ms=5, profile="safe"
    )


def test_export_profile_overrides_the_source_profile_under_source_fields() -> None:
    cfg = load(source="tuning: {profile: safe, batch_size: 100}", export="tuning: {profile: fast}")
    # upstream merge: profile from the export, batch_size from the source, the rest from `fast`
    assert cfg.exports[0].tuning == Tuning(
        batch_size=100, statement_timeout_s=0, max_retries=1, throttle_ms=0, profile="fast"
    )


@pytest.mark.parametrize(("env", "profile"), [("local", "fast"), ("replica", "balanced"), ("production", "balanced")])
def test_environment_picks_the_default_profile(env: str, profile: str) -> None:
    assert load(source=f"environment: {env}").source.tuning.profile == profile


def test_an_explicit_profile_wins_over_environment() -> None:
    assert load(source="environment: local\ntuning: {profile: safe}").source.tuning.profile == "safe"


def test_for_export_without_own_tuning_is_the_same_config() -> None:
    cfg = load()
    assert cfg.for_export(cfg.exports[0]) is cfg


@pytest.mark.parametrize(
    ("source", "fix"),
    [
        ("tuning: {profile: turbo}", "one of: fast, balanced, safe"),
        ("environment: staging", "one of: local, replica, production"),
        ("tuning: {throttle_ms: -1}", "must be at least 0"),
    ],
)
def test_bad_tuning_values_name_the_field(source: str, fix: str) -> None:
    assert fix in error(source=source)


@pytest.mark.parametrize("key", sorted(keys.TUNING_REFUSED))
def test_refused_tuning_keys_give_a_hint(key: str) -> None:
    msg = error(source=f"tuning: {{{key}: 1}}")
    assert msg.startswith(f"source.tuning.{key}: is a Rivet 0.8 key that rivet does not support (")
    assert keys.TUNING_REFUSED[key] in msg


def test_refused_keys_in_export_tuning_name_the_export_field() -> None:
    assert error(export="tuning: {adaptive: true}").startswith("exports[0].tuning.adaptive: is a Rivet 0.8 key")


# -- chunk keys --------------------------------------------------------------------------------------

CHUNKED = "mode: chunked\nchunk_column: created_at\n"


def test_chunk_max_attempts_is_max_retries_plus_one() -> None:
    exp = load(export=CHUNKED + "chunk_max_attempts: 1").exports[0]
    assert exp.tuning is not None and exp.tuning.max_retries == 0


def test_chunk_max_attempts_must_be_positive() -> None:
    assert "must be at least 1" in error(export=CHUNKED + "chunk_max_attempts: 0")


def test_chunk_checkpoint_is_accepted_either_way() -> None:
    assert load(export=CHUNKED + "chunk_checkpoint: true").exports[0].chunk_column == "created_at"
    assert load(export=CHUNKED + "chunk_checkpoint: false").exports[0].chunk_column == "created_at"


def test_chunk_by_days_is_chunk_size_in_days() -> None:
    exp = load(export=CHUNKED + "chunk_by_days: 7").exports[0]
    assert (exp.chunk_size, exp.chunk_by_days) == (7, 7)


@pytest.mark.parametrize("other", ["chunk_size: 10", "chunk_count: 4", "chunk_by_key: true"])
def test_chunk_by_days_excludes_other_sizing(other: str) -> None:
    assert "set chunk_by_days or" in error(export=CHUNKED + f"chunk_by_days: 7\n{other}")


@pytest.mark.parametrize("key", ["chunk_by_days: 7", "chunk_max_attempts: 2", "chunk_checkpoint: true"])
def test_chunk_keys_need_chunked_mode(key: str) -> None:
    assert "only applies to mode chunked (mode is full)" in error(export=key)


def test_chunk_by_days_refuses_an_integer_key_at_run_time() -> None:
    from rivet.contract.keys import KeyKind

    exp = load(export=CHUNKED + "chunk_by_days: 7").exports[0]
    rivet08.check_chunk_by_days(exp, KeyKind.TIMESTAMPTZ)
    rivet08.check_chunk_by_days(exp, KeyKind.DATE)
    with pytest.raises(ConfigError, match="chunk_by_days: needs a date or timestamp chunk column"):
        rivet08.check_chunk_by_days(exp, KeyKind.INT)


def test_chunk_by_key_column_name_is_keyset_chunking_on_it() -> None:
    exp = load(export="mode: chunked\nchunk_by_key: uuid").exports[0]
    assert (exp.chunk_column, exp.chunk_by_key) == ("uuid", True)
    assert "keep one" in error(export="mode: chunked\nchunk_column: id\nchunk_by_key: uuid")


# -- other accepted keys -----------------------------------------------------------------------------


def test_skip_empty_true_is_our_behaviour_and_false_is_refused() -> None:
    load(export="skip_empty: true")
    msg = error(export="skip_empty: false")
    assert msg.startswith("exports[0].skip_empty: false (write a file for 0 rows) is not supported")
    assert "part_count 0" in msg


def test_time_column_type_timestamp_is_accepted_and_unix_refused() -> None:
    tw = "mode: time_window\ntime_column: at\ndays_window: 3\n"
    load(export=tw + "time_column_type: timestamp")
    assert "to_timestamp(col)" in error(export=tw + "time_column_type: unix")
    assert "only applies to mode time_window" in error(export="time_column_type: timestamp")


@pytest.mark.parametrize(("profile", "codec"), [("none", "none"), ("fast", "snappy"), ("balanced", "zstd")])
def test_compression_profile_maps_to_a_codec(profile: str, codec: str) -> None:
    assert load(export=f"compression_profile: {profile}").exports[0].compression is Compression(codec)


def test_compression_profile_compact_and_conflicts_are_refused() -> None:
    assert "use balanced" in error(export="compression_profile: compact")
    assert "not both" in error(export="compression_profile: fast\ncompression: zstd")


def test_advisory_keys_are_accepted() -> None:
    load(export="source_group: replica-1\nreconcile_required: true\ntarget: bigquery")


def test_incremental_cursor_mode_single_column_only() -> None:
    inc = "mode: incremental\ncursor_column: id\n"
    load(export=inc + "incremental_cursor_mode: single_column")
    assert "COALESCE(primary, fallback)" in error(export=inc + "incremental_cursor_mode: coalesce")


def test_meta_columns_parse() -> None:
    assert load(export="meta_columns: {exported_at: true, row_hash: true}").exports[0].meta_columns == (True, True)
    assert load(export="meta_columns: {exported_at: false}").exports[0].meta_columns is None
    assert "allowed: exported_at, row_hash" in error(export="meta_columns: {exported: true}")


def test_quality_parse_and_errors() -> None:
    q = (
        load(export="quality: {row_count_min: 1, row_count_max: 9, null_ratio_max: {email: 0.5}, unique_columns: [id]}")
        .exports[0]
        .quality
    )
    assert q is not None
    assert (q.row_count_min, q.row_count_max, q.null_ratio_max, q.unique_columns) == (1, 9, (("email", 0.5),), ("id",))
    assert "is above row_count_max" in error(export="quality: {row_count_min: 5, row_count_max: 1}")
    assert "must be a number in [0, 1]" in error(export="quality: {null_ratio_max: {email: 2}}")
    assert "is a Rivet 0.8 key" in error(export="quality: {unique_max_entries: 10}")


def test_tls_accept_invalid_false_is_accepted_true_refused() -> None:
    tls = "tls: {mode: require, accept_invalid_certs: %s}"
    load(source=tls % "false")
    assert "use mode: require" in error(source=tls % "true")


# -- refusals and unknown keys ------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(keys.EXPORT_REFUSED))
def test_refused_export_keys_name_the_field_and_the_way_out(key: str) -> None:
    msg = error(export=f"{key}: 1")
    assert msg == f"exports[0].{key}: is a Rivet 0.8 key that rivet does not support ({keys.EXPORT_REFUSED[key]})"


def test_max_file_size_hint() -> None:
    assert "use chunked mode with chunk_size to bound part sizes" in error(export='max_file_size: "256MB"')


def test_refused_source_and_root_keys() -> None:
    assert "use password_env" in error(source="password: x")
    assert error(root="notifications: {slack: {webhook_url_env: X}}").startswith("notifications: is a Rivet 0.8 key")


def test_unknown_keys_still_get_did_you_mean() -> None:
    assert "did you mean `chunk_by_days`?" in error(export=CHUNKED + "chunk_by_dayz: 3")
    assert "did you mean `throttle_ms`?" in error(source="tuning: {throtle_ms: 3}")


def test_every_refusal_hint_is_one_line() -> None:
    tables: list[dict[str, str]] = [keys.ROOT_REFUSED, keys.SOURCE_REFUSED, keys.TUNING_REFUSED, keys.EXPORT_REFUSED]
    for table in tables:
        for hint in table.values():
            assert "\n" not in hint and hint


# -- meta columns --------------------------------------------------------------------------------------


def _batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "name": pa.array(["a", "", None], pa.string()),
            "x": pa.array([1.5, None, -0.0], pa.float64()),
            "d": pa.array([dt.date(1970, 1, 2), None, None], pa.date32()),
            "at": pa.array([dt.datetime(1970, 1, 1, 0, 0, 1), None, None], pa.timestamp("us", tz="UTC")),
        }
    )


def _by_hand(values: list[bytes | None]) -> int:
    framed = b"".join(b"-" if v is None else str(len(v)).encode() + b":" + v for v in values)
    digest = xxhash.xxh3_64_intdigest(framed)
    return digest - (1 << 64) if digest >= 1 << 63 else digest


def test_row_hash_is_the_documented_encoding() -> None:
    hashes = rivet08.row_hashes(_batch()).to_pylist()
    one_point_five = str(int.from_bytes(pa.array([1.5]).buffers()[1].to_pybytes(), "little", signed=True))
    assert hashes[0] == _by_hand([b"1", b"a", one_point_five.encode(), b"1", b"1000000"])
    assert hashes[1] == _by_hand([b"2", b"", None, None, None])
    assert hashes[1] != _by_hand([b"2", None, None, None, None])  # empty string is not NULL


def test_row_hash_is_stable_across_batches() -> None:
    batch = _batch()
    whole = rivet08.row_hashes(batch).to_pylist()
    assert rivet08.row_hashes(batch.slice(1)).to_pylist() == whole[1:]


def test_meta_transform_appends_the_columns() -> None:
    batch = _batch()
    schema, apply = rivet08.meta_transform(True, True)(batch.schema)
    assert schema.names[-2:] == [rivet08.EXPORTED_AT, rivet08.ROW_HASH]
    out = apply(batch)
    assert out.schema == schema and out.num_rows == 3
    assert len(set(out.column(rivet08.EXPORTED_AT).to_pylist())) == 1
    assert out.column(rivet08.ROW_HASH).to_pylist() == rivet08.row_hashes(batch).to_pylist()


def test_meta_columns_refuse_a_name_clash_and_unhashable_types() -> None:
    clash = pa.schema([pa.field(rivet08.ROW_HASH, pa.int64())])
    with pytest.raises(ConfigError, match="already has a column"):
        rivet08.output_schema(clash, False, True)
    lists = pa.schema([pa.field("tags", pa.list_(pa.string()))])
    with pytest.raises(ConfigError, match="row_hash cannot encode"):
        rivet08.meta_transform(False, True)(lists)
    rivet08.meta_transform(True, False)(lists)  # exported_at alone takes any relation


@pytest.mark.parametrize(
    "key", ["quality: {row_count_min: 1}", "meta_columns: {row_hash: true}", "tuning: {batch_size: 5}"]
)
def test_stdout_exports_refuse_what_they_cannot_honour(key: str) -> None:
    msg = error(export=f"destination: {{type: stdout}}\n{key}")
    assert "does not apply to a stdout destination" in msg


@pytest.mark.parametrize("key", ["parallel_exports", "parallel_export_processes"])
def test_parallel_export_flags_false_accepted_true_refused(key: str) -> None:
    load(root=f"{key}: false")
    assert error(root=f"{key}: true").startswith(f"{key}: is a Rivet 0.8 key that rivet does not support with true")
