"""`source.tls` against real servers that speak TLS, through the real `rivet` CLI.

A throwaway CA signs a server certificate for `localhost` only. Each server *requires* TLS from the test
user (PostgreSQL: `hostnossl ... reject`; MariaDB: `require_secure_transport`), so an export that succeeds
proves that both of its connections (metadata, and the bulk reader: ADBC or ConnectorX) were encrypted.
Connecting to `localhost` matches the certificate; connecting to `127.0.0.1` does not, which tells
verify-full (host name checked) from verify-ca (chain only).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rivet.config.model import TlsConfig, TlsMode
from rivet.errors import ConfigError
from rivet.sources.tls import (
    MYSQL_URL_TLS_KEYS,
    cx_tls_params,
    mysql_ssl_context,
    mysql_tls,
    pg_tls_params,
    warn_if_plaintext,
)
from rivet.sources.urls import MYSQL_SCHEMES, POSTGRES_SCHEMES, cx_mysql_url, parse_url, pg_url
from tests.fixtures.databases import DbServer, ServerTls, _start_or_skip, start_mariadb, start_postgres
from tests.integration.rivet_cli import Result, rivet

ENGINES = ["postgres", "mysql"]
ROWS = 500


# --- a throwaway PKI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path  # signed the server certificate
    other_ca: Path  # signed nothing the servers present
    server: ServerTls  # for DNS:localhost only (no IP address)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _ca("rivet test CA")
    _, other = _ca("some other CA")
    cert, key = _server(ca_key, ca, ["localhost"])
    (d / "ca.pem").write_bytes(_pem(ca))
    (d / "other-ca.pem").write_bytes(_pem(other))
    (d / "server.crt").write_bytes(cert)
    (d / "server.key").write_bytes(key)
    return Pki(d / "ca.pem", d / "other-ca.pem", ServerTls(d / "server.crt", d / "server.key"))


# --- servers that require TLS ---------------------------------------------------------------------


def _require_tls(server: DbServer) -> None:
    """Plaintext logins are refused from now on (the helpers' own connections negotiate TLS by default)."""
    if server.engine == "postgres":
        hba = server.base_dir / "data" / "pg_hba.conf"
        hba.write_text("hostnossl all all 0.0.0.0/0 reject\n" + hba.read_text())
        server.execute("SELECT pg_reload_conf()")
    else:
        server.execute("SET GLOBAL require_secure_transport = ON")


@pytest.fixture(scope="module")
def servers(pki: Pki) -> Iterator[dict[str, DbServer]]:
    started: dict[str, DbServer] = {}
    try:
        started["postgres"] = _start_or_skip(lambda: start_postgres(tls=pki.server))
        started["mysql"] = _start_or_skip(lambda: start_mariadb(tls=pki.server))
        for server in started.values():
            _require_tls(server)
            server.execute("CREATE TABLE t (id int PRIMARY KEY, v varchar(20))")
            server.executemany("INSERT INTO t VALUES (%s, %s)", [(i, f"row {i}") for i in range(1, ROWS + 1)])
        yield started
    finally:
        for server in started.values():
            server.stop()


# --- helpers --------------------------------------------------------------------------------------


def url_for(server: DbServer, host: str, query: str = "") -> str:
    scheme = "postgresql" if server.engine == "postgres" else "mysql"
    return f"{scheme}://{server.user}:{server.password}@{host}:{server.port}/{server.database}{query}"


def export(tmp_path: Path, server: DbServer, url: str, tls: dict[str, Any] | None, name: str = "t") -> Result:
    out = tmp_path / f"out-{name}"
    source: dict[str, Any] = {"type": server.engine, "url_env": "RIVET_TEST_DB_URL"}
    if tls is not None:
        source["tls"] = tls
    doc = {
        "source": source,
        "exports": [{"name": name, "table": "t", "destination": {"type": "local", "path": str(out)}}],
        "state": {"path": str(tmp_path / f"state-{name}.db")},
    }
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    res = rivet("run", "-c", str(cfg), db_url=url, timeout=180)
    assert server.password not in res.output, "the password leaked into the output"
    return res


def exported_rows(tmp_path: Path, name: str = "t") -> int:
    manifest = json.loads((tmp_path / f"out-{name}" / "manifest.json").read_text())
    return int(manifest["row_count"])


def error_line(res: Result) -> str:
    return next((line for line in res.stderr.splitlines() if line.startswith("rivet: error:")), res.output[-2000:])


# --- the modes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_verify_full_with_the_right_ca_and_host_name_exports(
    engine: str, servers: dict[str, DbServer], pki: Pki, tmp_path: Path
) -> None:
    server = servers[engine]
    res = export(tmp_path, server, url_for(server, "localhost"), {"mode": "verify-full", "ca_file": str(pki.ca)})
    assert res.code == 0, res.output[-3000:]
    assert exported_rows(tmp_path) == ROWS
    assert "source_plaintext" not in res.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_a_certificate_from_another_ca_is_refused(
    engine: str, servers: dict[str, DbServer], pki: Pki, tmp_path: Path
) -> None:
    server = servers[engine]
    for mode in ("verify-ca", "verify-full"):
        res = export(tmp_path, server, url_for(server, "localhost"), {"mode": mode, "ca_file": str(pki.other_ca)})
        assert res.code == 1, (mode, res.output[-3000:])
        line = error_line(res)
        assert "TLS failed" in line and "certificate verify failed" in line.lower(), line
        assert "source.tls.ca_file" in line, line
        assert not (tmp_path / "out-t").exists() or not any((tmp_path / "out-t").iterdir())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_host_name_the_certificate_lacks_fails_verify_full_but_passes_verify_ca(
    engine: str, servers: dict[str, DbServer], pki: Pki, tmp_path: Path
) -> None:
    server = servers[engine]
    url = url_for(server, "127.0.0.1")  # the certificate names only `localhost`
    full = export(tmp_path, server, url, {"mode": "verify-full", "ca_file": str(pki.ca)}, name="full")
    assert full.code == 1, full.output[-3000:]
    line = error_line(full)
    assert "TLS failed" in line and ("mismatch" in line.lower() or "does not match" in line.lower()), line
    chain_only = export(tmp_path, server, url, {"mode": "verify-ca", "ca_file": str(pki.ca)}, name="ca")
    assert chain_only.code == 0, chain_only.output[-3000:]
    assert exported_rows(tmp_path, "ca") == ROWS


@pytest.mark.parametrize("engine", ENGINES)
def test_require_encrypts_without_a_ca(engine: str, servers: dict[str, DbServer], tmp_path: Path) -> None:
    server = servers[engine]
    res = export(tmp_path, server, url_for(server, "127.0.0.1"), {"mode": "require"})
    assert res.code == 0, res.output[-3000:]
    assert exported_rows(tmp_path) == ROWS


@pytest.mark.parametrize("engine", ENGINES)
def test_disable_is_honoured_so_a_server_that_requires_tls_refuses_it(
    engine: str, servers: dict[str, DbServer], tmp_path: Path
) -> None:
    server = servers[engine]
    res = export(tmp_path, server, url_for(server, "127.0.0.1"), {"mode": "disable"})
    assert res.code == 1, res.output[-3000:]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_url_setting_that_contradicts_source_tls_is_refused_naming_both(
    engine: str, servers: dict[str, DbServer], pki: Pki, tmp_path: Path
) -> None:
    server = servers[engine]
    query, named = (
        ("?sslmode=disable", "sslmode=disable") if engine == "postgres" else ("?ssl-mode=DISABLED", "ssl-mode=disabled")
    )
    res = export(tmp_path, server, url_for(server, "localhost", query), {"mode": "verify-full", "ca_file": str(pki.ca)})
    assert res.code == 1, res.output[-3000:]
    line = error_line(res)
    assert "source.tls.mode" in line and "verify-full" in line and named in line, line


@pytest.mark.parametrize("engine", ENGINES)
def test_the_urls_own_tls_setting_applies_when_source_tls_is_absent(
    engine: str, servers: dict[str, DbServer], tmp_path: Path
) -> None:
    server = servers[engine]
    query = "?sslmode=require" if engine == "postgres" else "?ssl-mode=REQUIRED"
    res = export(tmp_path, server, url_for(server, "127.0.0.1", query), None)
    assert res.code == 0, res.output[-3000:]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_missing_ca_file_is_named(engine: str, servers: dict[str, DbServer], tmp_path: Path) -> None:
    server = servers[engine]
    missing = tmp_path / "nowhere" / "ca.pem"
    res = export(tmp_path, server, url_for(server, "localhost"), {"mode": "verify-full", "ca_file": str(missing)})
    assert res.code == 1, res.output[-3000:]
    line = error_line(res)
    assert "source.tls.ca_file" in line and str(missing) in line, line


def test_a_plaintext_connection_to_another_host_warns_once(capsys: pytest.CaptureFixture[str]) -> None:
    warn_if_plaintext("postgres", "db.example.internal", encrypted=False)
    warn_if_plaintext("postgres", "db.example.internal", encrypted=False)
    for local in ("127.0.0.1", "localhost", "::1", "/run/postgresql"):
        warn_if_plaintext("postgres", local, encrypted=False)
    warn_if_plaintext("mysql", "encrypted.example", encrypted=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if "source_plaintext" in line]
    assert len(lines) == 1 and "host=db.example.internal" in lines[0] and "level=warning" in lines[0], lines


# --- what each driver is handed (no server needed) ---------------------------------------------------------


def _params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_libpq_gets_sslmode_and_sslrootcert_beside_the_liveness_settings() -> None:
    url = parse_url("postgresql://app:p%40ss@db.example:5433/shop?application_name=a+b", POSTGRES_SCHEMES, "pg")
    out = pg_url(url, pg_tls_params(url, TlsConfig(TlsMode.VERIFY_FULL, "/etc/rivet/ca dir/ca.crt")))
    assert out.startswith("postgresql://app:p%40ss@db.example:5433/shop?application_name=a+b&")  # kept as given
    got = _params(out)
    assert got["sslmode"] == "verify-full" and got["keepalives"] == "1"
    assert "sslrootcert=/etc/rivet/ca%20dir/ca.crt" in out  # libpq decodes %20, not `+`
    assert pg_tls_params(url, TlsConfig()) == {}  # absent: the URL's own sslmode (libpq's prefer) applies


def test_libpq_settings_in_the_url_must_agree_with_source_tls() -> None:
    same = parse_url("postgresql://u:pw@h/db?sslmode=verify-full&sslrootcert=/ca.pem", POSTGRES_SCHEMES, "pg")
    assert pg_tls_params(same, TlsConfig(TlsMode.VERIFY_FULL, "/ca.pem"))["sslmode"] == "verify-full"
    for query, tls, named in [
        ("sslmode=disable", TlsConfig(TlsMode.VERIFY_FULL, "/ca.pem"), "sslmode=disable"),
        ("sslmode=require", TlsConfig(TlsMode.DISABLE), "sslmode=require"),
        ("sslrootcert=/other.pem", TlsConfig(TlsMode.VERIFY_CA, "/ca.pem"), "sslrootcert"),
    ]:
        url = parse_url(f"postgresql://u:Zq9pw@h/db?{query}", POSTGRES_SCHEMES, "pg")
        with pytest.raises(ConfigError) as info:
            pg_tls_params(url, tls)
        assert named in str(info.value) and "Zq9pw" not in str(info.value)


def test_connectorx_gets_ssl_mode_keepalives_and_no_unix_socket_switch() -> None:
    url = parse_url("mariadb://u:p%23w@db.example:3307/shop", MYSQL_SCHEMES, "mysql")
    out = cx_mysql_url(url, cx_tls_params(TlsConfig(TlsMode.VERIFY_FULL, "/ca.pem")))
    assert out.startswith("mysql://u:p%23w@db.example:3307/shop?")  # ConnectorX knows only mysql://
    got = _params(out)
    assert got["ssl-mode"] == "verify_identity" and got["ssl-ca"] == "/ca.pem"
    assert got["prefer_socket"] == "false" and got["tcp_user_timeout_ms"] == "120000"
    assert {m: cx_tls_params(TlsConfig(m, "/ca.pem" if m.verifies else None)).get("ssl-mode") for m in TlsMode} == {
        TlsMode.DISABLE: "disabled",
        TlsMode.REQUIRE: "required",
        TlsMode.VERIFY_CA: "verify_ca",
        TlsMode.VERIFY_FULL: "verify_identity",
    }


def test_mysql_follows_the_urls_ssl_mode_when_source_tls_is_absent_and_refuses_a_contradiction() -> None:
    url = parse_url("mysql://u:pw@h/db?ssl-mode=VERIFY_CA&ssl-ca=/ca.pem", MYSQL_SCHEMES, "mysql")
    assert mysql_tls(url, TlsConfig()) == TlsConfig(TlsMode.VERIFY_CA, "/ca.pem")
    assert mysql_tls(url, TlsConfig(TlsMode.VERIFY_CA, "/ca.pem")) == TlsConfig(TlsMode.VERIFY_CA, "/ca.pem")
    with pytest.raises(ConfigError, match="ssl-mode=verify_ca"):
        mysql_tls(url, TlsConfig(TlsMode.REQUIRE))
    replaced = cx_mysql_url(url, cx_tls_params(TlsConfig(TlsMode.VERIFY_CA, "/ca.pem")), drop=MYSQL_URL_TLS_KEYS)
    assert replaced.count("ssl-mode=") == 1 and "VERIFY_CA" not in replaced


def test_pymysql_contexts_match_the_modes(pki: Pki) -> None:
    assert mysql_ssl_context(TlsConfig()) is None and mysql_ssl_context(TlsConfig(TlsMode.DISABLE)) is None
    require = mysql_ssl_context(TlsConfig(TlsMode.REQUIRE))
    assert require is not None and require.verify_mode == ssl.CERT_NONE and not require.check_hostname
    chain = mysql_ssl_context(TlsConfig(TlsMode.VERIFY_CA, str(pki.ca)))
    assert chain is not None and chain.verify_mode == ssl.CERT_REQUIRED and not chain.check_hostname
    full = mysql_ssl_context(TlsConfig(TlsMode.VERIFY_FULL, str(pki.ca)))
    assert full is not None and full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname
