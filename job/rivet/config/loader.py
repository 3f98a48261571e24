"""Strict rivet.yaml loader: unknown keys get "did you mean", every error names its field path.

`${VAR}` is filled from `--param k=v` first, then the environment; an unset variable is an error.
Source credentials are resolved here and wrapped in Secret; destination credentials stay env var
names until the destination is opened (so `rivet validate` never needs source secrets).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from rivet.config import rivet08
from rivet.config.model import (
    Compression,
    DestinationConfig,
    DestinationType,
    ExportConfig,
    Format,
    Mode,
    RivetConfig,
    Secret,
    SourceConfig,
    SourceType,
    TlsConfig,
    TlsMode,
    Tuning,
    Verify,
)
from rivet.contract.prefix import check_template
from rivet.errors import ConfigError

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

SOURCE_KEYS = {
    "type",
    "url_env",
    "url",
    "url_file",
    "host",
    "port",
    "user",
    "database",
    "password_env",
    "tuning",
    "tls",
}
TUNING_KEYS = {"batch_size", "statement_timeout_s", "max_retries", "read_timeout_s"}
TLS_KEYS = {"mode", "ca_file"}
EXPORT_KEYS = {
    "name",
    "table",
    "query",
    "mode",
    "chunk_column",
    "chunk_size",
    "chunk_count",
    "parallel",
    "cursor_column",
    "time_column",
    "days_window",
    "format",
    "compression",
    "destination",
    "verify",
    "columns",
}
# Engine keys the operator's RivetExport does not expose (yet): accepted in rivet.yaml, never rendered by it.
CLI_EXPORT_KEYS = {"chunk_by_key"}
DEST_KEYS: dict[DestinationType, set[str]] = {
    DestinationType.LOCAL: {"type", "path"},
    DestinationType.S3: {
        "type",
        "bucket",
        "prefix",
        "region",
        "endpoint",
        "access_key_env",
        "secret_key_env",
        "session_token_env",
        "aws_profile",
        "sse",  # server-side encryption: AES256 | aws:kms
        "sse_kms_key_id",  # only with sse: aws:kms
        "conditional_writes",  # require (default) | warn: what to do with a store that ignores If-None-Match
    },
    DestinationType.GCS: {"type", "bucket", "prefix", "credentials_file", "endpoint"},
    DestinationType.AZURE: {
        "type",
        "account_name",
        "container",
        "bucket",
        "prefix",
        "endpoint",
        "account_key_env",
        "sas_token_env",
        "allow_anonymous",
    },
    DestinationType.STDOUT: {"type"},
}
ALL_DEST_KEYS = set().union(*DEST_KEYS.values())
SSE_MODES = ("AES256", "aws:kms")
CONDITIONAL_WRITES = ("require", "warn")


CONFIG_ENV_PREFIX = "env:"


def load_config(
    path: str | Path,
    params: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    need_source: bool = True,
) -> RivetConfig:
    if isinstance(path, str) and path.startswith(CONFIG_ENV_PREFIX):
        # The operator's Jobs carry their rendered config in an env var of the Job's (immutable) pod
        # template: no ConfigMap that anyone with ConfigMap rights could edit mid-run.
        name = path[len(CONFIG_ENV_PREFIX) :]
        text = (env if env is not None else os.environ).get(name)
        if text is None:
            raise ConfigError("", f"-c {path}: environment variable {name} is not set", "set it, or pass a file")
        return load_config_text(text, params=params, env=env, origin=path, need_source=need_source)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {p}: {exc.strerror}", "check the -c path") from None
    return load_config_text(text, params=params, env=env, origin=str(p), need_source=need_source)


def load_config_text(
    text: str,
    params: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    origin: str = "<config>",
    need_source: bool = True,
) -> RivetConfig:
    """Parse and check a config. `need_source=False` (validate) leaves source secrets unresolved."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{origin} is not valid YAML{where}", "fix the syntax") from None
    values = {**(env if env is not None else os.environ), **(params or {})}
    root = _mapping(raw, "", "the config file must be a mapping with `source` and `exports`")
    rivet08.refuse(root, "", rivet08.ROOT_REFUSED)
    _check_keys(root, "", {"source", "exports", "state"} | rivet08.ROOT_KEYS)
    rivet08.root_flags(root)
    root = {k: _interpolate(v, k, values, strict=need_source or k != "source") for k, v in root.items()}
    source = _source(_require(root, "source", ""), values, need_source)
    exports_raw = _require(root, "exports", "")
    if not isinstance(exports_raw, list) or not exports_raw:
        raise ConfigError("exports", "must be a non-empty list of exports")
    exports = tuple(_export(e, f"exports[{i}]", root["source"]) for i, e in enumerate(exports_raw))
    seen: set[str] = set()
    for i, e in enumerate(exports):
        if e.name in seen:
            raise ConfigError(f"exports[{i}].name", f"duplicate export name {e.name!r}", "names must be unique")
        seen.add(e.name)
    state_path = ".rivet/state.db"
    if "state" in root:
        state = _mapping(root["state"], "state")
        _check_keys(state, "state", {"path"})
        state_path = _str(state, "path", "state") or state_path
    return RivetConfig(source=source, exports=exports, state_path=state_path)


# -- helpers -----------------------------------------------------------------------------------


def _interpolate(node: Any, path: str, values: Mapping[str, str], strict: bool = True) -> Any:
    if isinstance(node, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in values:
                if not strict:
                    return ""
                raise ConfigError(path, f"${{{name}}} is not set", f"export {name} or pass --param {name}=...")
            return values[name]

        return _VAR_RE.sub(sub, node)
    if isinstance(node, dict):
        return {k: _interpolate(v, _join(path, str(k)), values, strict) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", values, strict) for i, v in enumerate(node)]
    return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(node: Any, path: str, problem: str = "must be a mapping") -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ConfigError(path or "<root>", problem)
    return node


def _check_keys(node: dict[str, Any], path: str, allowed: set[str], hint_pool: set[str] | None = None) -> None:
    for key in node:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
            if close:
                fix = f"did you mean `{close[0]}`?"
            elif hint_pool and key in hint_pool:
                fix = "not valid for this type; allowed: " + ", ".join(sorted(allowed))
            else:
                fix = "allowed: " + ", ".join(sorted(allowed))
            raise ConfigError(_join(path, str(key)), "unknown key", fix)


def _require(node: dict[str, Any], key: str, path: str) -> Any:
    if key not in node or node[key] is None:
        raise ConfigError(_join(path, key), "is required")
    return node[key]


def _str(node: dict[str, Any], key: str, path: str, required: bool = False) -> str | None:
    if key not in node or node[key] is None:
        if required:
            raise ConfigError(_join(path, key), "is required")
        return None
    value = node[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(_join(path, key), f"must be a non-empty string, got {_describe(value)}")
    return value


def _int(node: dict[str, Any], key: str, path: str, minimum: int = 1) -> int | None:
    if key not in node or node[key] is None:
        return None
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(_join(path, key), f"must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ConfigError(_join(path, key), f"must be at least {minimum}, got {value}")
    return value


def _bool(node: dict[str, Any], key: str, path: str) -> bool:
    value = node.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(_join(path, key), f"must be true or false, got {_describe(value)}")
    return value


def _enum(node: dict[str, Any], key: str, path: str, enum: type[Any], default: Any = None) -> Any:
    if key not in node or node[key] is None:
        if default is None:
            raise ConfigError(_join(path, key), "is required", "one of: " + ", ".join(e.value for e in enum))
        return default
    value = node[key]
    try:
        return enum(value)
    except ValueError:
        choices = [e.value for e in enum]
        close = difflib.get_close_matches(str(value), choices, n=1)
        fix = f"did you mean `{close[0]}`?" if close else "one of: " + ", ".join(choices)
        raise ConfigError(_join(path, key), f"invalid value {value!r}", fix) from None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"


# -- sections ----------------------------------------------------------------------------------


def _source(node: Any, values: Mapping[str, str], need_source: bool = True) -> SourceConfig:
    path = "source"
    src = _mapping(node, path)
    rivet08.refuse(src, path, rivet08.SOURCE_REFUSED)
    _check_keys(src, path, SOURCE_KEYS | rivet08.SOURCE_KEYS)
    engine: SourceType = _enum(src, "type", path, SourceType)
    given = [k for k in ("url_env", "url", "url_file", "host") if k in src]
    if len(given) != 1:
        raise ConfigError(
            path,
            "set exactly one of url_env, url, url_file, or host (+ port, user, database, password_env)"
            + (f"; found {', '.join(given)}" if given else ""),
        )
    how = given[0]
    try:
        url = _resolve_url(src, path, how, engine, values)
    except ConfigError:
        if need_source:
            raise
        url = f"{engine.value}://unresolved"  # validate never connects to the source
    tuning = _tuning(src, path, None, rivet08.environment_profile(src, path))
    return SourceConfig(type=engine, url=Secret(url), tuning=tuning, tls=_tls(src, path))


def _tuning_fields(node: dict[str, Any], path: str) -> dict[str, Any]:
    """The fields a `tuning:` block sets (absent or null: not set), checked; `profile` included if given."""
    if "tuning" not in node or node["tuning"] is None:
        return {}
    where = f"{path}.tuning"
    t = _mapping(node["tuning"], where)
    rivet08.refuse(t, where, rivet08.TUNING_REFUSED)
    _check_keys(t, where, TUNING_KEYS | rivet08.TUNING_KEYS)
    minimum = {"batch_size": 1, "statement_timeout_s": 0, "max_retries": 0, "read_timeout_s": 0, "throttle_ms": 0}
    fields: dict[str, Any] = {k: _int(t, k, where, m) for k, m in minimum.items() if t.get(k) is not None}
    given = rivet08.profile(t, where)
    if given is not None:
        fields["profile"] = given
    return fields


def _tuning(
    node: dict[str, Any], path: str, inherited: dict[str, Any] | None = None, default_profile: str | None = None
) -> Tuning:
    """`tuning:` of the source (or of an export, over the source's `inherited` fields): an absent (or null)
    field takes its default; 0 means what it says.

    statement_timeout_s: 0 = no statement timeout (the servers' own meaning of 0); max_retries: 0 = one
    attempt, no retry; batch_size: at least 1. `profile` (Rivet 0.8: safe, balanced, fast; else
    `source.environment`'s, else none) sets the defaults the given fields are laid over."""
    fields = {**(inherited or {}), **_tuning_fields(node, path)}
    profile = fields.pop("profile", None) or default_profile
    base = Tuning() if profile is None else Tuning(profile=profile, **rivet08.PROFILES[profile])
    return replace(base, **fields)


def _tls(src: dict[str, Any], path: str) -> TlsConfig:
    """`source.tls`: `mode` (disable, require, verify-ca, verify-full) and `ca_file` (a PEM CA bundle).

    Absent, the URL's own settings apply. `ca_file` goes with the verifying modes only, and they need it:
    a Job has no CA store of its own to fall back on (point it at the system bundle, e.g.
    /etc/ssl/certs/ca-certificates.crt, to trust public CAs). Whether the file exists is checked when the
    source is opened, so a config can be checked where the file is not mounted."""
    if "tls" not in src or src["tls"] is None:
        return TlsConfig()
    where = f"{path}.tls"
    node = _mapping(src["tls"], where)
    _check_keys(node, where, TLS_KEYS | rivet08.TLS_KEYS)
    rivet08.tls_flags(node, where)
    mode: TlsMode = _enum(node, "mode", where, TlsMode)
    ca_file = _str(node, "ca_file", where)
    if ca_file and not mode.verifies:
        raise ConfigError(
            f"{where}.ca_file",
            f"only applies to mode verify-ca or verify-full (mode is {mode.value})",
            "remove it, or set mode: verify-full (or verify-ca) to check the server's certificate against it",
        )
    if mode.verifies and not ca_file:
        raise ConfigError(
            f"{where}.ca_file",
            f"is required for mode {mode.value}: the PEM file of the CA that signed the server's certificate",
            "mount it from a Secret or ConfigMap, or use /etc/ssl/certs/ca-certificates.crt for public CAs",
        )
    return TlsConfig(mode=mode, ca_file=ca_file)


def _resolve_url(src: dict[str, Any], path: str, how: str, engine: SourceType, values: Mapping[str, str]) -> str:
    if how == "url_env":
        var = _str(src, "url_env", path, required=True)
        assert var is not None
        if var not in values:
            raise ConfigError(f"{path}.url_env", f"environment variable {var} is not set", f"export {var}")
        url = values[var]
    elif how == "url":
        url = _str(src, "url", path, required=True) or ""
    elif how == "url_file":
        file = _str(src, "url_file", path, required=True) or ""
        try:
            url = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{path}.url_file", f"cannot read {file}: {exc.strerror}") from None
    else:
        url = _url_from_parts(src, path, engine, values)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    ok = {"postgresql", "postgres"} if engine is SourceType.POSTGRES else {"mysql", "mariadb"}
    if scheme not in ok:
        raise ConfigError(
            f"{path}.{how}",
            f"the connection URL must start with {sorted(ok)[-1]}:// for type {engine.value}",
            "fix the URL scheme or source.type",
        )
    return url


def _url_from_parts(src: dict[str, Any], path: str, engine: SourceType, values: Mapping[str, str]) -> str:
    host = _str(src, "host", path, required=True)
    user = _str(src, "user", path, required=True) or ""
    database = _str(src, "database", path, required=True)
    port = _int(src, "port", path) or (5432 if engine is SourceType.POSTGRES else 3306)
    password = ""
    var = _str(src, "password_env", path)
    if var:
        if var not in values:
            raise ConfigError(f"{path}.password_env", f"environment variable {var} is not set", f"export {var}")
        password = ":" + quote(values[var], safe="")
    scheme = "postgresql" if engine is SourceType.POSTGRES else "mysql"
    return f"{scheme}://{quote(user, safe='')}{password}@{host}:{port}/{database}"


def _export(node: Any, path: str, source_node: dict[str, Any] | None = None) -> ExportConfig:
    exp = _mapping(node, path)
    rivet08.refuse(exp, path, rivet08.EXPORT_REFUSED)
    _check_keys(exp, path, EXPORT_KEYS | CLI_EXPORT_KEYS | rivet08.EXPORT_KEYS)
    rivet08.accepted_flags(exp, path)
    exp = _rivet08_export(exp, path)
    name = _str(exp, "name", path, required=True) or ""
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"{path}.name", f"invalid export name {name!r}", "use letters, digits, '.', '_' or '-' (max 63)"
        )
    table, query = _str(exp, "table", path), _str(exp, "query", path)
    if (table is None) == (query is None):
        raise ConfigError(path, "set exactly one of `table` or `query`")
    mode: Mode = _enum(exp, "mode", path, Mode, Mode.FULL)
    fmt: Format = _enum(exp, "format", path, Format, Format.PARQUET)
    default_comp = Compression.ZSTD if fmt is Format.PARQUET else Compression.NONE
    compression: Compression = _enum(exp, "compression", path, Compression, default_comp)
    if fmt is Format.CSV and compression is not Compression.NONE:
        raise ConfigError(f"{path}.compression", "applies to parquet only", "remove it for csv")
    mode_fields = {
        "chunk_column": Mode.CHUNKED,
        "chunk_size": Mode.CHUNKED,
        "chunk_count": Mode.CHUNKED,
        "chunk_by_key": Mode.CHUNKED,
        "cursor_column": Mode.INCREMENTAL,
        "time_column": Mode.TIME_WINDOW,
        "days_window": Mode.TIME_WINDOW,
    }
    for key, needs in mode_fields.items():
        if key in exp and mode is not needs:
            raise ConfigError(f"{path}.{key}", f"only applies to mode {needs.value}", f"mode is {mode.value}")
    chunk_size = _int(exp, "chunk_size", path)
    chunk_count = _int(exp, "chunk_count", path)
    if chunk_size and chunk_count:
        raise ConfigError(f"{path}.chunk_count", "set chunk_size or chunk_count, not both")
    required = {
        Mode.CHUNKED: ["chunk_column"],
        Mode.INCREMENTAL: ["cursor_column"],
        Mode.TIME_WINDOW: ["time_column", "days_window"],
    }.get(mode, [])
    for key in required:
        if key not in exp:
            raise ConfigError(f"{path}.{key}", f"is required for mode {mode.value}")
    parallel = _int(exp, "parallel", path) or 1
    if parallel > 1 and mode is not Mode.CHUNKED:
        raise ConfigError(f"{path}.parallel", "parallel workers need mode chunked", "remove it or use chunked")
    destination = _destination(_require(exp, "destination", path), f"{path}.destination")
    if destination.type is DestinationType.STDOUT and mode is Mode.CHUNKED:
        raise ConfigError(
            f"{path}.destination.type",
            "stdout is streaming only and cannot take chunked mode",
            "use mode full, or a file/object destination",
        )
    if destination.type is DestinationType.STDOUT:
        rivet08.stdout_refusals(exp, path)
    return ExportConfig(
        name=name,
        table=table,
        query=query,
        mode=mode,
        format=fmt,
        compression=compression,
        destination=destination,
        chunk_column=_str(exp, "chunk_column", path),
        chunk_size=chunk_size,
        chunk_count=chunk_count,
        chunk_by_key=_bool(exp, "chunk_by_key", path),
        parallel=parallel,
        cursor_column=_str(exp, "cursor_column", path),
        time_column=_str(exp, "time_column", path),
        days_window=_int(exp, "days_window", path),
        verify=_enum(exp, "verify", path, Verify, Verify.SIZE),
        columns=_columns(exp, path),
        path=path,
        tuning=_export_tuning(exp, path, source_node),
        chunk_by_days=_int(exp, "chunk_by_days", path),
        quality=rivet08.quality(exp, path),
        meta_columns=rivet08.meta_columns(exp, path),
    )


_DECIMAL_RE = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_COLUMNS_FIX = 'use "string" (the database\'s exact text) or "decimal(p,s)" with 1 <= p <= 38 and 0 <= s <= p'


def _columns(exp: dict[str, Any], path: str) -> tuple[tuple[str, str], ...]:
    """`columns:`: column name -> "string" or "decimal(p,s)", normalized; refused per entry, naming it."""
    if exp.get("columns") is None:
        return ()
    node = _mapping(exp["columns"], f"{path}.columns", "must be a mapping of column name to a type")
    out = []
    for name, value in node.items():
        where = _join(f"{path}.columns", str(name))
        spelled = value.strip().lower() if isinstance(value, str) else None
        match = _DECIMAL_RE.fullmatch(spelled or "")
        if spelled == "string":
            out.append((str(name), "string"))
        elif match and 1 <= int(match[1]) <= 38 and int(match[2]) <= int(match[1]):
            out.append((str(name), f"decimal({int(match[1])},{int(match[2])})"))
        else:
            raise ConfigError(where, f"{_describe(value)} is not a column type Rivet can export to", _COLUMNS_FIX)
    return tuple(out)


def _rivet08_export(exp: dict[str, Any], path: str) -> dict[str, Any]:
    """A Rivet 0.8 export in our spelling: `chunk_by_key: <column>` is chunk_column + keyset chunking,
    `chunk_by_days: N` is chunk_size N (date and timestamp keys chunk in UTC days), `compression_profile`
    is the `compression` it stands for. Mode-bound 0.8 keys are refused outside their mode."""
    out = dict(exp)
    mode = out.get("mode", "full")
    for keys, needs in (
        (rivet08.CHUNKED_ONLY, "chunked"),
        (rivet08.TIME_WINDOW_ONLY, "time_window"),
        (rivet08.INCREMENTAL_ONLY, "incremental"),
    ):
        for key in keys:
            if key in out and mode != needs:
                raise ConfigError(f"{path}.{key}", f"only applies to mode {needs}", f"mode is {mode}")
    by_key = out.get("chunk_by_key")
    if isinstance(by_key, str):
        if not by_key.strip():
            raise ConfigError(f"{path}.chunk_by_key", "must be true, false or a column name")
        if out.get("chunk_column") not in (None, by_key):
            raise ConfigError(
                f"{path}.chunk_by_key", f"names {by_key!r} but chunk_column is {out['chunk_column']!r}", "keep one"
            )
        out["chunk_column"], out["chunk_by_key"] = by_key, True
    if out.get("chunk_by_days") is not None:
        days = _int(out, "chunk_by_days", path)
        for other in ("chunk_size", "chunk_count", "chunk_by_key"):
            if out.get(other) not in (None, False):
                raise ConfigError(f"{path}.chunk_by_days", f"set chunk_by_days or {other}, not both")
        out["chunk_size"] = days
    if out.get("chunk_max_attempts") is not None:
        _int(out, "chunk_max_attempts", path)
    comp = rivet08.compression(out, path)
    if comp is not None:
        if out.get("format") == "csv" and comp != "none":
            raise ConfigError(f"{path}.compression_profile", "applies to parquet only", "remove it for csv")
        out["compression"] = comp
    return out


def _export_tuning(exp: dict[str, Any], path: str, source_node: dict[str, Any] | None) -> Tuning | None:
    """The export's own tuning (Rivet 0.8): source.tuning's fields with the export's `tuning:` laid over
    them (profile included), then `chunk_max_attempts` as max_retries + 1. None when it has neither."""
    attempts = exp.get("chunk_max_attempts")
    if exp.get("tuning") is None and attempts is None:
        return None
    src = source_node or {}
    inherited = _tuning_fields(src, "source")
    tuning = _tuning(exp, path, inherited, rivet08.environment_profile(src, "source"))
    return tuning if attempts is None else replace(tuning, max_retries=attempts - 1)


def _destination(node: Any, path: str) -> DestinationConfig:
    dst = _mapping(node, path)
    kind: DestinationType = _enum(dst, "type", path, DestinationType)
    _check_keys(dst, path, DEST_KEYS[kind], hint_pool=ALL_DEST_KEYS)

    def s(key: str) -> str | None:
        return _str(dst, key, path)

    if kind is DestinationType.LOCAL:
        _str(dst, "path", path, required=True)
    if kind in (DestinationType.S3, DestinationType.GCS):
        _str(dst, "bucket", path, required=True)
    container = s("container")
    if kind is DestinationType.AZURE:
        _str(dst, "account_name", path, required=True)
        if container and "bucket" in dst:
            raise ConfigError(f"{path}.bucket", "set `container` or `bucket` (0.8 spelling), not both")
        container = container or s("bucket")
        if not container:
            raise ConfigError(f"{path}.container", "is required")
        auth: list[str] = [k for k in ("account_key_env", "sas_token_env") if k in dst]
        if dst.get("allow_anonymous") is True:
            auth.append("allow_anonymous")
        if len(auth) > 1:
            raise ConfigError(path, f"{' and '.join(auth)} are mutually exclusive", "keep exactly one")
        if not auth:
            raise ConfigError(
                path, "no authentication", "set one of account_key_env, sas_token_env, allow_anonymous: true"
            )
    if kind is DestinationType.S3 and ("access_key_env" in dst) != ("secret_key_env" in dst):
        raise ConfigError(path, "access_key_env and secret_key_env go together", "set both or neither")
    if kind is DestinationType.S3 and "aws_profile" in dst and "access_key_env" in dst:
        raise ConfigError(path, "aws_profile and access_key_env are mutually exclusive", "keep one")
    # S3 server-side encryption (SSE-S3 or SSE-KMS); SSE-C is not supported (the key would be a secret to hold).
    sse = s("sse")
    if sse is not None and sse not in SSE_MODES:
        raise ConfigError(f"{path}.sse", f"{sse!r} is not a server-side encryption mode", "use AES256 or aws:kms")
    if s("sse_kms_key_id") is not None and sse != "aws:kms":
        raise ConfigError(f"{path}.sse_kms_key_id", "needs sse: aws:kms", "set sse: aws:kms or remove the key id")
    conditional = s("conditional_writes") or "require"
    if conditional not in CONDITIONAL_WRITES:
        raise ConfigError(
            f"{path}.conditional_writes",
            f"{conditional!r} is not a policy",
            "use require (refuse a store that ignores conditional writes) or warn",
        )
    cfg = DestinationConfig(
        type=kind,
        path=s("path"),
        bucket=s("bucket") if kind is not DestinationType.AZURE else None,
        prefix=dst.get("prefix") or "",
        region=s("region"),
        endpoint=s("endpoint"),
        access_key_env=s("access_key_env"),
        secret_key_env=s("secret_key_env"),
        session_token_env=s("session_token_env"),
        aws_profile=s("aws_profile"),
        credentials_file=s("credentials_file"),
        account_name=s("account_name"),
        container=container,
        account_key_env=s("account_key_env"),
        sas_token_env=s("sas_token_env"),
        allow_anonymous=_bool(dst, "allow_anonymous", path),
        sse=sse,
        sse_kms_key_id=s("sse_kms_key_id"),
        conditional_writes=conditional,
    )
    if not isinstance(cfg.prefix, str):
        raise ConfigError(f"{path}.prefix", "must be a string")
    check_template(cfg.template, f"{path}.{'path' if kind is DestinationType.LOCAL else 'prefix'}")
    return cfg
