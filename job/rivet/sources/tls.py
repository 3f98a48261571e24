"""`source.tls` for each driver: libpq's sslmode/sslrootcert (psycopg and ADBC), PyMySQL's SSLContext and
ConnectorX's `ssl-mode`/`ssl-ca`, so the metadata and the bulk connection of a source are held to the same
mode, and a plaintext connection to another host is said out loud.

| tls.mode | PostgreSQL (libpq) | MySQL metadata (PyMySQL) | MySQL rows (ConnectorX 0.4.6) |
|---|---|---|---|
| unset | the URL's sslmode, else libpq's `prefer` | the URL's ssl-mode, else plaintext | the URL's ssl-mode, else plaintext |
| disable | sslmode=disable | no TLS | ssl-mode=disabled |
| require | sslmode=require | TLS, no certificate check | ssl-mode=required |
| verify-ca | sslmode=verify-ca, sslrootcert=ca_file | TLS, chain checked against ca_file | ssl-mode=verify_ca, ssl-ca=ca_file |
| verify-full | sslmode=verify-full, sslrootcert=ca_file | TLS, chain and host name | ssl-mode=verify_identity, ssl-ca=ca_file |

ConnectorX passes these to the Rust mysql crate (native-tls): tests/integration/test_tls.py checks each row
against a real server, since a reader that silently skipped verification would be worse than none.
A setting that the URL already holds must agree with `source.tls`; a disagreement is refused, naming both.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading

from rivet.config.model import TlsConfig, TlsMode
from rivet.errors import ConfigError
from rivet.log import log
from rivet.sources.urls import DbUrl

_PG_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# ConnectorX's ssl-mode values (MySQL's spelling, any case) and the tls.mode each one means.
_MYSQL_MODES = {
    "disabled": TlsMode.DISABLE,
    "required": TlsMode.REQUIRE,
    "verify_ca": TlsMode.VERIFY_CA,
    "verify_identity": TlsMode.VERIFY_FULL,
    "preferred": None,  # TLS when the server offers it: no tls.mode says that
}
_CX_MODES = {
    TlsMode.DISABLE: "disabled",
    TlsMode.REQUIRE: "required",
    TlsMode.VERIFY_CA: "verify_ca",
    TlsMode.VERIFY_FULL: "verify_identity",
}
MYSQL_URL_TLS_KEYS = ("ssl-mode", "sslmode", "ssl-ca")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def check_ca_file(tls: TlsConfig) -> None:
    """A missing or unreadable CA file is named before any driver reports it in its own words."""
    if tls.ca_file is None:
        return
    try:
        with open(tls.ca_file, "rb") as handle:
            head = handle.read(64 * 1024)
    except OSError as exc:
        raise ConfigError(
            "source.tls.ca_file",
            f"cannot read {tls.ca_file}: {exc.strerror}",
            "mount the CA bundle there (a Secret or ConfigMap key) or fix the path",
        ) from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ConfigError("source.tls.ca_file", f"{tls.ca_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")


def pg_tls_params(url: DbUrl, tls: TlsConfig) -> dict[str, str]:
    """libpq parameters for `tls`, to add to the URL; refused if the URL already says otherwise."""
    if tls.mode is None:
        return {}
    given = url.params
    own_mode = given.get("sslmode")
    if own_mode is not None and own_mode != tls.mode.value:
        shown = f"sslmode={own_mode}" if own_mode in _PG_MODES else "another sslmode"
        raise ConfigError(
            "source.tls.mode",
            f"is {tls.mode.value} but the source URL sets {shown}",
            "remove sslmode from the URL (source.tls then applies to every connection), or make them agree",
        )
    own_ca = given.get("sslrootcert")
    if own_ca is not None and tls.ca_file is not None and own_ca != tls.ca_file:
        raise ConfigError(
            "source.tls.ca_file",
            f"is {tls.ca_file} but the source URL sets sslrootcert to another file",
            "remove sslrootcert from the URL, or make them agree",
        )
    params = {"sslmode": tls.mode.value}
    if tls.ca_file is not None:
        params["sslrootcert"] = tls.ca_file
    return params


def mysql_tls(url: DbUrl, tls: TlsConfig) -> TlsConfig:
    """The TLS settings both MySQL connections use: `source.tls`, else what the URL's ssl-mode/ssl-ca say.

    A URL setting that disagrees with `source.tls` is refused, naming both."""
    given = url.params
    own = given.get("ssl-mode", given.get("sslmode"))
    own_ca = given.get("ssl-ca")
    own_mode: TlsMode | None = None
    if own is not None:
        if own.lower() not in _MYSQL_MODES:
            raise ConfigError(
                "source.url",
                "the URL's ssl-mode must be one of " + ", ".join(_MYSQL_MODES),
                "or remove it and set source.tls.mode",
            )
        own_mode = _MYSQL_MODES[own.lower()]
    if tls.mode is None:
        if own_mode is None:
            return TlsConfig()
        return TlsConfig(mode=own_mode, ca_file=own_ca if own_mode.verifies else None)
    if own is not None and own_mode is not tls.mode:
        raise ConfigError(
            "source.tls.mode",
            f"is {tls.mode.value} but the source URL sets ssl-mode={own.lower()}",
            "remove ssl-mode from the URL (source.tls then applies to every connection), or make them agree",
        )
    if own_ca is not None and tls.ca_file is not None and own_ca != tls.ca_file:
        raise ConfigError(
            "source.tls.ca_file",
            f"is {tls.ca_file} but the source URL sets ssl-ca to another file",
            "remove ssl-ca from the URL, or make them agree",
        )
    return tls


def cx_tls_params(tls: TlsConfig) -> dict[str, str]:
    """ConnectorX URL parameters for the effective MySQL TLS settings (see `mysql_tls`)."""
    if tls.mode is None:
        return {}
    params = {"ssl-mode": _CX_MODES[tls.mode]}
    if tls.ca_file is not None:
        params["ssl-ca"] = tls.ca_file
    return params


def mysql_ssl_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """PyMySQL's `ssl=` for the effective MySQL TLS settings; None for a plaintext connection."""
    if tls.mode is None or tls.mode is TlsMode.DISABLE:
        return None
    if tls.mode is TlsMode.REQUIRE:  # encrypted, not authenticated: what the mode says
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    ctx.check_hostname = tls.mode is TlsMode.VERIFY_FULL
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def is_local(host: str) -> bool:
    """Loopback addresses, `localhost` and Unix socket paths never leave the machine."""
    if not host or host.startswith("/") or host.lower() in ("localhost", "localhost.") or host.startswith("@"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower().endswith(".localhost")


def warn_if_plaintext(engine: str, host: str, encrypted: bool) -> None:
    """One warning line per host and process when credentials and rows cross the network unencrypted."""
    if encrypted or is_local(host):
        return
    with _warned_lock:
        if host in _warned:
            return
        _warned.add(host)
    log(
        "source_plaintext",
        level="warning",
        engine=engine,
        host=host,
        note="the source connection is not encrypted: set source.tls.mode (verify-full) to protect it",
    )
