"""The keys of Rivet 0.8 (the Rust CLI, `rivet-cli` 0.8.0) configs: each one maps to our behaviour or is
refused with a one-line hint, so a 0.8 config either loads and does what it says or names what to change.

The table of every key, and why, is docs/rivet-0.8-keys.md. Keys that are neither ours nor 0.8's still get
the loader's "did you mean".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rivet.config.model import QualityConfig
from rivet.errors import ConfigError

# -- accepted keys (beyond ours) -----------------------------------------------------------------------

ROOT_KEYS = {"parallel_exports", "parallel_export_processes"}  # only `false`, see root_flags()
SOURCE_KEYS = {"environment"}
TUNING_KEYS = {"profile", "throttle_ms"}
TLS_KEYS = {"accept_invalid_certs", "accept_invalid_hostnames"}  # only `false`, see tls_flags()
EXPORT_KEYS = {
    "tuning",
    "skip_empty",
    "chunk_checkpoint",
    "chunk_max_attempts",
    "chunk_by_days",
    "time_column_type",
    "quality",
    "meta_columns",
    "compression_profile",
    "incremental_cursor_mode",
    "source_group",
    "reconcile_required",
    "target",
}
QUALITY_KEYS = {"row_count_min", "row_count_max", "null_ratio_max", "unique_columns"}
# Keys valid in one mode only, as in 0.8 (which ignored them elsewhere; we say so instead).
CHUNKED_ONLY = ("chunk_checkpoint", "chunk_max_attempts", "chunk_by_days")
TIME_WINDOW_ONLY = ("time_column_type",)
INCREMENTAL_ONLY = ("incremental_cursor_mode",)

# -- tuning profiles ---------------------------------------------------------------------------------

# What `tuning.profile` sets, before the block's own fields (then the export's) are laid over it. 0.8's
# values where we have the knob; batch_size is a row count here (0.8's fast/balanced size batches by memory,
# 64/32 MB a flush, which lands near our 50,000 rows for typical rows). lock_timeout_s, retry_backoff_ms and
# memory_threshold_mb have no counterpart: rivet takes no locks, backs off 1, 2, 4 ... 30 s, and bounds
# memory by batch and row-group size.
PROFILES: dict[str, dict[str, int]] = {
    "fast": {"batch_size": 50_000, "statement_timeout_s": 0, "max_retries": 1, "throttle_ms": 0},
    "balanced": {"batch_size": 50_000, "statement_timeout_s": 300, "max_retries": 3, "throttle_ms": 50},
    "safe": {"batch_size": 2_000, "statement_timeout_s": 120, "max_retries": 10, "throttle_ms": 500},
}
# `source.environment` picks the profile when no `tuning.profile` is set (as in 0.8).
ENVIRONMENTS = {"local": "fast", "replica": "balanced", "production": "balanced"}

# `compression_profile` -> our `compression` (0.8's `compact` is zstd at level 9: we have no level).
COMPRESSION_PROFILES = {"none": "none", "fast": "snappy", "balanced": "zstd"}

# -- refused keys: one-line hints ----------------------------------------------------------------------

ROOT_REFUSED = {
    "notifications": "rivet sends no Slack/webhook notifications; alert on the exit code or the JSON summary",
}
SOURCE_REFUSED = {
    "password": "plaintext passwords are not read; use password_env (or url_env / url_file)",
}
TUNING_REFUSED = {
    "batch_size_memory_mb": "batches are sized in rows; set batch_size (rows per batch) instead",
    "retry_backoff_ms": "retries back off 1, 2, 4 ... 30 s; remove it (max_retries sets how many)",
    "lock_timeout_s": "rivet takes no locks (plain snapshot reads); remove it",
    "memory_threshold_mb": "memory is bounded by batch_size and row groups; remove it (lower batch_size instead)",
    "max_batch_memory_mb": "memory is bounded by batch_size and row groups; remove it (lower batch_size instead)",
    "on_batch_memory_exceeded": "there is no batch memory cap to exceed; remove it",
    "adaptive": "batch size and parallelism are fixed for a run; remove it (set batch_size and parallel)",
    "min_parallel": "parallelism is fixed for a run; remove it (parallel sets it)",
    "max_value_mb": "there is no per-value ceiling; remove it",
}
EXPORT_REFUSED = {
    "max_file_size": "not yet supported; use chunked mode with chunk_size to bound part sizes",
    "query_file": "inline the SQL as `query:` (${VAR} and --param still apply)",
    "chunk_dense": "for sparse or non-integer keys use chunk_by_key: true (keyset chunks of even size)",
    "chunk_size_memory_mb": "set chunk_size (keys per chunk, or days for date/timestamp keys)",
    "compression_level": "each codec runs at its default level; remove it",
    "cursor_fallback_column": "select COALESCE(primary, fallback) AS a column in `query:` and use it as cursor_column",
    "on_schema_drift": "a schema change during a run fails it (exit 5); each manifest records schema_fingerprint "
    "to compare across runs; remove it",
    "shape_drift_warn_factor": "no shape-drift tracking; remove it",
    "parquet": "row groups are cut at 16 MiB of buffered data; remove the parquet block",
}


def refuse(node: dict[str, Any], path: str, refused: dict[str, str]) -> None:
    """ConfigError for the first key of `node` that 0.8 had and rivet refuses, naming it and the way out."""
    for key in node:
        if key in refused:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(where, "is a Rivet 0.8 key that rivet does not support", refused[key])


# -- per-key parsing ---------------------------------------------------------------------------------


def root_flags(root: dict[str, Any]) -> None:
    """`parallel_exports` / `parallel_export_processes`: `false` is what we do (a config's exports run one
    after another, each with its own `parallel` chunk workers); `true` is refused."""
    for key in sorted(ROOT_KEYS):
        value = root.get(key, False)
        if value is True:
            raise ConfigError(
                key,
                "is a Rivet 0.8 key that rivet does not support with true",
                "exports run one after another; run one `rivet run -c F -e NAME` per export to run them at once",
            )
        if value is not False:
            raise ConfigError(key, "must be true or false")


def _choice(node: dict[str, Any], key: str, path: str, allowed: Iterable[str]) -> str | None:
    """`node[key]` if it is one of `allowed` (None when absent); a ConfigError naming the field otherwise."""
    value = node.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise ConfigError(f"{path}.{key}", f"invalid value {value!r}", "one of: " + ", ".join(allowed))
    return str(value)


def profile(node: dict[str, Any], path: str) -> str | None:
    return _choice(node, "profile", path, PROFILES)


def environment_profile(src: dict[str, Any], path: str) -> str | None:
    value = _choice(src, "environment", path, ENVIRONMENTS)
    return None if value is None else ENVIRONMENTS[value]


def tls_flags(node: dict[str, Any], path: str) -> None:
    """`accept_invalid_certs` / `accept_invalid_hostnames`: `false` is what we do anyway; `true` is refused."""
    for key in sorted(TLS_KEYS):
        value = node.get(key, False)
        if value is False:
            continue
        if value is True:
            raise ConfigError(
                f"{path}.{key}",
                "is a Rivet 0.8 key that rivet does not support with true",
                "use mode: require to encrypt without verifying the certificate, or verify-ca to skip the host name",
            )
        raise ConfigError(f"{path}.{key}", "must be true or false")


def compression(exp: dict[str, Any], path: str) -> str | None:
    """`compression_profile`, as the `compression` it stands for (None: not set)."""
    value = exp.get("compression_profile")
    if value is None:
        return None
    if "compression" in exp:
        raise ConfigError(f"{path}.compression_profile", "set compression or compression_profile, not both")
    if value == "compact":
        raise ConfigError(
            f"{path}.compression_profile",
            "compact (zstd level 9) is not supported",
            "use balanced (zstd at its default level)",
        )
    if value not in COMPRESSION_PROFILES:
        raise ConfigError(
            f"{path}.compression_profile", f"invalid value {value!r}", "one of: none, fast, balanced (or compact)"
        )
    return COMPRESSION_PROFILES[value]


def accepted_flags(exp: dict[str, Any], path: str) -> None:
    """Keys that change nothing here, checked for their type and for the values we cannot honour."""
    if "skip_empty" in exp and exp["skip_empty"] is not True:
        if exp["skip_empty"] is False:
            raise ConfigError(
                f"{path}.skip_empty",
                "false (write a file for 0 rows) is not supported: rivet never writes an empty part",
                "remove it: a 0-row run certifies a manifest with part_count 0 and writes _SUCCESS",
            )
        raise ConfigError(f"{path}.skip_empty", "must be true or false")
    for key in ("chunk_checkpoint", "reconcile_required"):
        if key in exp and not isinstance(exp[key], bool):
            raise ConfigError(f"{path}.{key}", "must be true or false")
    for key in ("source_group", "target"):
        if key in exp and (not isinstance(exp[key], str) or not exp[key].strip()):
            raise ConfigError(f"{path}.{key}", "must be a non-empty string")
    kind = exp.get("time_column_type", "timestamp")
    if kind == "unix":
        raise ConfigError(
            f"{path}.time_column_type",
            "unix (epoch-number time columns) is not supported",
            "select to_timestamp(col) (PostgreSQL) or FROM_UNIXTIME(col) (MySQL) AS a column in `query:`"
            " and name it in time_column",
        )
    if kind != "timestamp":
        raise ConfigError(f"{path}.time_column_type", f"invalid value {kind!r}", "one of: timestamp, unix")
    mode = exp.get("incremental_cursor_mode", "single_column")
    if mode == "coalesce":
        raise ConfigError(
            f"{path}.incremental_cursor_mode",
            "coalesce is not supported",
            "select COALESCE(primary, fallback) AS a column in `query:` and use it as cursor_column",
        )
    if mode != "single_column":
        raise ConfigError(f"{path}.incremental_cursor_mode", f"invalid value {mode!r}", "one of: single_column")


def meta_columns(exp: dict[str, Any], path: str) -> tuple[bool, bool] | None:
    """`meta_columns: {exported_at, row_hash}` as (exported_at, row_hash); None when neither is on."""
    node = exp.get("meta_columns")
    if node is None:
        return None
    where = f"{path}.meta_columns"
    if not isinstance(node, dict):
        raise ConfigError(where, "must be a mapping")
    for key, value in node.items():
        if key not in ("exported_at", "row_hash"):
            raise ConfigError(f"{where}.{key}", "unknown key", "allowed: exported_at, row_hash")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}", "must be true or false")
    flags = (node.get("exported_at", False), node.get("row_hash", False))
    return flags if any(flags) else None


def stdout_refusals(exp: dict[str, Any], path: str) -> None:
    """A stdout export streams one part with no manifest: no gate to hold `_SUCCESS` back, no meta columns,
    and it reads with source.tuning as is."""
    for key, fix in (
        (
            "quality",
            "quality gates hold back _SUCCESS, which a stdout stream does not have; use a file or object destination",
        ),
        ("meta_columns", "add the column in a query (e.g. SELECT *, CURRENT_TIMESTAMP AS _rivet_exported_at ...)"),
        ("tuning", "a stdout stream reads with source.tuning; set it there"),
    ):
        if exp.get(key) is not None:
            raise ConfigError(f"{path}.{key}", "does not apply to a stdout destination", fix)


def quality(exp: dict[str, Any], path: str) -> QualityConfig | None:
    """`quality:` gates: row_count_min / row_count_max (integers >= 0), null_ratio_max (column -> [0, 1]),
    unique_columns (a list of column names). 0.8's unique_max_entries is refused (we track no value set)."""
    node = exp.get("quality")
    if node is None:
        return None
    where = f"{path}.quality"
    if not isinstance(node, dict):
        raise ConfigError(where, "must be a mapping")
    if "unique_max_entries" in node:
        raise ConfigError(
            f"{where}.unique_max_entries",
            "is a Rivet 0.8 key that rivet does not support",
            "uniqueness is checked by the database over the exported rows, without a cap; remove it",
        )
    for key in node:
        if key not in QUALITY_KEYS:
            raise ConfigError(f"{where}.{key}", "unknown key", "allowed: " + ", ".join(sorted(QUALITY_KEYS)))

    def count(key: str) -> int | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}.{key}", "must be an integer >= 0")
        return value

    lo, hi = count("row_count_min"), count("row_count_max")
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(f"{where}.row_count_min", f"is above row_count_max ({lo} > {hi})")
    ratios: list[tuple[str, float]] = []
    raw = node.get("null_ratio_max") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.null_ratio_max", "must be a mapping of column name to a ratio in [0, 1]")
    for col, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{where}.null_ratio_max.{col}", "must be a number in [0, 1]")
        ratios.append((str(col), float(value)))
    unique = node.get("unique_columns") or []
    if not isinstance(unique, list) or not all(isinstance(c, str) and c.strip() for c in unique):
        raise ConfigError(f"{where}.unique_columns", "must be a list of column names")
    return QualityConfig(lo, hi, tuple(ratios), tuple(unique))
