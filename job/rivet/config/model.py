"""Typed, frozen configuration objects. Built only by the loader; passed everywhere else."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Secret:
    """A credential value that never prints itself (repr/str/format all give `***`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SourceType(StrEnum):
    POSTGRES = "postgres"
    MYSQL = "mysql"


class Mode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    CHUNKED = "chunked"
    TIME_WINDOW = "time_window"


class Format(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


class Compression(StrEnum):
    ZSTD = "zstd"
    SNAPPY = "snappy"
    GZIP = "gzip"
    LZ4 = "lz4"
    NONE = "none"


class DestinationType(StrEnum):
    LOCAL = "local"
    S3 = "s3"
    GCS = "gcs"
    AZURE = "azure"
    STDOUT = "stdout"


class Verify(StrEnum):
    """How strictly validate checks parts: `size` accepts size-only evidence, `content` demands a checksum."""

    SIZE = "size"
    CONTENT = "content"


DEFAULT_READ_TIMEOUT_S = 300
READ_TIMEOUT_MARGIN_S = 60


@dataclass(frozen=True)
class Tuning:
    batch_size: int = 50_000
    statement_timeout_s: int = 300
    max_retries: int = 3
    # How long a source connection may stay silent while rivet waits for it (a stalled network, proxy or
    # server) before it is closed with a retryable error. None: the default, see `read_timeout`; 0: never.
    read_timeout_s: int | None = None
    # Rivet 0.8 keys: a pause between batches (ms, 0 = none), and the profile the values came from (None: our
    # defaults). See docs/rivet-0.8-keys.md for what safe / balanced / fast set.
    throttle_ms: int = 0
    profile: str | None = None

    @property
    def read_timeout(self) -> int:
        """The read timeout in force: as configured, else 300 s, but never shorter than the statement timeout
        plus a minute, so the client does not give up on a statement the server would still let finish."""
        if self.read_timeout_s is not None:
            return self.read_timeout_s
        if self.statement_timeout_s:
            return max(DEFAULT_READ_TIMEOUT_S, self.statement_timeout_s + READ_TIMEOUT_MARGIN_S)
        return DEFAULT_READ_TIMEOUT_S


class TlsMode(StrEnum):
    """`source.tls.mode`, in libpq's words: encrypt only, or also verify the chain, or chain and host name."""

    DISABLE = "disable"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"

    @property
    def verifies(self) -> bool:
        return self in (TlsMode.VERIFY_CA, TlsMode.VERIFY_FULL)


@dataclass(frozen=True)
class TlsConfig:
    """`source.tls`. `mode` None leaves the URL's own settings (or the driver's default) in force."""

    mode: TlsMode | None = None
    ca_file: str | None = None  # PEM bundle of the CA(s) that sign the server certificate


@dataclass(frozen=True)
class SourceConfig:
    type: SourceType
    url: Secret  # full connection URL, credentials included: never log it, use redact_url()
    tuning: Tuning = field(default_factory=Tuning)
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass(frozen=True)
class DestinationConfig:
    """Fields per type follow the destination guide; credentials are env var *names*, read when opened."""

    type: DestinationType
    path: str | None = None  # local
    bucket: str | None = None  # s3, gcs
    prefix: str = ""  # s3, gcs, azure
    region: str | None = None  # s3
    endpoint: str | None = None  # s3, gcs, azure
    access_key_env: str | None = None  # s3
    secret_key_env: str | None = None  # s3
    session_token_env: str | None = None  # s3
    aws_profile: str | None = None  # s3
    credentials_file: str | None = None  # gcs
    account_name: str | None = None  # azure
    container: str | None = None  # azure (0.8 configs spell it `bucket`)
    account_key_env: str | None = None  # azure
    sas_token_env: str | None = None  # azure
    allow_anonymous: bool = False  # azure
    # s3 server-side encryption, sent on every write (PutObject, CreateMultipartUpload, CopyObject):
    # "AES256" (SSE-S3) or "aws:kms" (SSE-KMS, with sse_kms_key_id or the account's default key).
    sse: str | None = None  # s3
    sse_kms_key_id: str | None = None  # s3, only with sse: aws:kms (a key id, ARN or alias/...)
    # s3: every part, manifest.json and _SUCCESS is written conditionally (fencing). An S3-compatible store
    # that ignores If-None-Match is refused at plan time ("require"), or only warned about ("warn").
    conditional_writes: str = "require"

    @property
    def template(self) -> str:
        """The prefix template to resolve: the local path, or the object-store prefix."""
        return (self.path or "") if self.type is DestinationType.LOCAL else self.prefix


@dataclass(frozen=True)
class QualityConfig:
    """`exports[].quality` (Rivet 0.8): gates checked over the exported rows before `_SUCCESS` is written."""

    row_count_min: int | None = None
    row_count_max: int | None = None
    null_ratio_max: tuple[tuple[str, float], ...] = ()  # (column, max share of NULLs in [0, 1])
    unique_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportConfig:
    name: str
    table: str | None
    query: str | None
    mode: Mode
    format: Format
    compression: Compression
    destination: DestinationConfig
    chunk_column: str | None = None
    chunk_size: int | None = None
    chunk_count: int | None = None
    chunk_by_key: bool = False  # keyset chunking even for integer, date and timestamp keys
    parallel: int = 1
    cursor_column: str | None = None
    time_column: str | None = None
    days_window: int | None = None
    verify: Verify = Verify.SIZE
    # `columns:` overrides, in order: column name -> "string" or "decimal(p,s)" (normalized spelling)
    columns: tuple[tuple[str, str], ...] = ()
    path: str = "exports[0]"  # where the definition sits in its file, for errors that name a field
    # Rivet 0.8 keys (docs/rivet-0.8-keys.md): the export's own tuning (source.tuning with `tuning:` and
    # `chunk_max_attempts` laid over it; None: source.tuning as is), `chunk_by_days` (already folded into
    # chunk_size, kept to check the key is a date or timestamp), and the quality gates run before certify.
    tuning: Tuning | None = None
    chunk_by_days: int | None = None
    quality: QualityConfig | None = None
    meta_columns: tuple[bool, bool] | None = None  # (exported_at, row_hash); None: neither

    @property
    def effective_compression(self) -> Compression:
        """CSV is written uncompressed and reports `none` (contract section 2)."""
        return Compression.NONE if self.format is Format.CSV else self.compression


@dataclass(frozen=True)
class RivetConfig:
    source: SourceConfig
    exports: tuple[ExportConfig, ...]
    state_path: str = ".rivet/state.db"

    def for_export(self, exp: ExportConfig) -> RivetConfig:
        """This config with `exp`'s own tuning (if it has any) as the source's: what a run of `exp` uses."""
        if exp.tuning is None or exp.tuning == self.source.tuning:
            return self
        return replace(self, source=replace(self.source, tuning=exp.tuning))

    def export(self, name: str) -> ExportConfig:
        for exp in self.exports:
            if exp.name == name:
                return exp
        from rivet.errors import ConfigError

        known = ", ".join(e.name for e in self.exports)
        raise ConfigError("exports", f"no export named {name!r}", f"known exports: {known}")
