"""Redaction: registered secrets never reach free text (the pieces a URL parser makes of a password are
masked where they stand as credentials), and structured output is redacted in its free-text fields only,
so machine data (part keys, commit records, digests) survives byte for byte whatever a password holds."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from rivet import log
from rivet.cli.output import emit, emit_error
from rivet.config.model import DestinationConfig, DestinationType
from rivet.contract.manifest import CommitRecord
from rivet.destinations.azure_auth import open_azure
from rivet.destinations.s3_auth import open_s3
from rivet.redact import (
    FREE_TEXT_FIELDS,
    password_pieces,
    password_spellings,
    redact_obj,
    redact_text,
    secret_pieces,
    secret_values,
    url_password,
)


@pytest.fixture(autouse=True)
def fresh_secrets() -> Iterator[None]:
    saved, saved_pieces = set(log._secrets), set(log._pieces)
    log._secrets.clear()
    log._pieces.clear()
    yield
    log._secrets.clear()
    log._secrets.update(saved)
    log._pieces.clear()
    log._pieces.update(saved_pieces)


def test_scrub_obj_keeps_a_base64_md5_that_looks_like_a_sig_pair() -> None:
    log.add_secret("Zx9SecretQv")
    doc = {
        "ok": True,
        "parts": [
            {"key": "out/key=1/part-000001.parquet", "content_md5": "ab/sig=cd==", "rows": 3},
            {"content_md5": "Qk+token=9w==", "schema_fingerprint": "sha256:0f/pwd=1"},
        ],
        "error": {"message": "denied for key Zx9SecretQv via https://u:pw@host/x?sig=abc&sv=1", "n": None},
        "hint": ("Zx9SecretQv", 1.5),
    }
    out = log.scrub_obj(doc)
    assert out["parts"][0] == {"key": "out/key=1/part-000001.parquet", "content_md5": "ab/sig=cd==", "rows": 3}
    assert out["parts"][1] == {"content_md5": "Qk+token=9w==", "schema_fingerprint": "sha256:0f/pwd=1"}
    message = out["error"]["message"]
    assert "Zx9SecretQv" not in message and "pw@" not in message and "sig=abc" not in message
    assert message == "denied for key *** via https://***@host/x?sig=***&sv=1"
    assert out["hint"] == ["***", 1.5] and out["ok"] is True and out["error"]["n"] is None
    text = json.dumps(out)
    assert "ab/sig=cd==" in text and "Zx9SecretQv" not in text


def test_redacting_serialised_json_would_mangle_the_md5_which_is_why_scrub_obj_exists() -> None:
    # The old way (scrub(json.dumps(...))) still masks secrets, but redact before serialising.
    assert redact_obj({"content_md5": "ab/sig=cd=="}) == {"content_md5": "ab/sig=cd=="}
    assert redact_text("sv=2022&sig=abc") == "sv=2022&sig=***"
    assert redact_text("host=h password=hunter22 user=u") == "host=h password=*** user=u"


def test_non_json_values_are_stringified_and_redacted_only_in_free_text() -> None:
    log.add_secret("Zx9SecretQv")
    assert log.scrub_obj({"detail": Path("/tmp/Zx9SecretQv")}) == {"detail": "/tmp/***"}
    # a path is machine data (validate reports it, scripts read it back): never rewritten
    assert log.scrub_obj({"path": Path("/tmp/Zx9SecretQv")}) == {"path": "/tmp/Zx9SecretQv"}


def test_a_database_url_registers_its_password_whole_and_the_pieces_parsers_cut() -> None:
    url = "postgresql://rivet:Kq7/Lmn#Npq?Rst@Tvw@127.0.0.1:5432/rivet"
    assert url_password(url) == "Kq7/Lmn#Npq?Rst@Tvw"
    assert {url, "Kq7/Lmn#Npq?Rst@Tvw", "Kq7%2FLmn%23Npq%3FRst%40Tvw"} <= set(secret_values(url))
    assert set(secret_pieces(url)) == {"Kq7", "Lmn", "Npq", "Rst", "Tvw"}
    log.add_secret(url)
    for echoed, leak in (
        (f"connecting to {url} failed", "Kq7"),
        ("password Kq7/Lmn#Npq?Rst@Tvw rejected", "Kq7"),
        ('could not translate host name "Tvw@127.0.0.1" to address', "Tvw"),  # a piece ending a user info
        ("dsn host=h password=Kq7 port=5432", "Kq7"),  # a piece as a password= value
        ("dsn host=h password: 'Rst' port=5432", "Rst"),
    ):
        scrubbed = log.scrub(echoed)
        assert leak not in scrubbed and "Kq7/Lmn#Npq?Rst@Tvw" not in scrubbed, scrubbed
    assert log.scrub("rivet at 127.0.0.1:5432, database rivet") == "rivet at 127.0.0.1:5432, database rivet"


def test_password_spellings_and_pieces() -> None:
    assert set(password_spellings("Ab%2FCde%40Fgh")) == {"Ab%2FCde%40Fgh", "Ab/Cde@Fgh"}
    pieces = set(password_pieces("Ab%2FCde%40Fgh"))
    assert pieces == {"Cde", "Fgh"}  # the whole spellings are not pieces: they are masked anywhere
    assert "Ab" not in pieces  # under 3 characters: masking it would mangle ordinary text


def test_urls_in_messages_lose_all_user_info_even_when_malformed() -> None:
    text = 'failed: "postgresql://rivet:Kq7/Lm#Np@Tv@127.0.0.1:5432/db" and mysql://a:Hh9/Jj@h/x'
    out = redact_text(text)
    assert "Kq7" not in out and "Lm#Np" not in out and "Hh9" not in out and "Jj" not in out
    assert "127.0.0.1:5432/db" in out
    assert redact_text("s3://bucket/out/key=1/a.parquet") == "s3://bucket/out/key=1/a.parquet"


def test_short_secrets_are_not_masked_everywhere() -> None:
    log.add_secret("ab")
    assert log.scrub("about abc") == "about abc"


def test_destination_credentials_are_registered_when_read(tmp_path: Path) -> None:
    env = {
        "K": "AKIAEXAMPLEID",
        "S": "Wq9SecretAccessKey/Xy+Zz",
        "T": "Tk7SessionTokenValue",
        "AK": "Az9AccountKeyBase64==",
        "SAS": "?sv=2022-11-02&sp=rl&sig=Sg7SasSignature%2Bxx",
    }
    s3 = DestinationConfig(
        type=DestinationType.S3,
        bucket="b",
        endpoint="http://127.0.0.1:1",
        access_key_env="K",
        secret_key_env="S",
        session_token_env="T",
    )
    open_s3(s3, "p/", env)
    azure_key = DestinationConfig(type=DestinationType.AZURE, account_name="acct", container="c", account_key_env="AK")
    open_azure(azure_key, "p/", env)
    azure_sas = DestinationConfig(type=DestinationType.AZURE, account_name="acct", container="c", sas_token_env="SAS")
    open_azure(azure_sas, "p/", env)
    registered = set(log.secrets())
    assert {env["S"], env["T"], env["AK"], env["SAS"], env["SAS"].lstrip("?")} <= registered
    assert env["K"] not in registered  # an access key id names the key; messages may quote it
    assert log.scrub(f"echo {env['S']} {env['T']} {env['AK']}") == "echo *** *** ***"


# --- machine data is never rewritten (issue #21, item 2) ----------------------------------------------

# Passwords made of words and digits that part keys, dates and fingerprints also hold. With the old
# piece-masking, `Xy9:part` turned the commit record's key `part-000001.parquet` into `***-000001.parquet`
# and `Qz:000001` into `part-***.parquet`: finalize then found the committed part missing.
DATA_LIKE_PASSWORDS = ["Xy9:part", "Qz:000001", "part:000001", "2026-11-23", "parquet", "xxh3", "000001", "orders"]
KEY = "orders/dt=2026-11-23/part-000001.parquet"


def data_like_url(password: str) -> str:
    return f"postgresql://rivet:{password}@db.example:5432/shop"


def chunk_output() -> dict[str, Any]:
    """What `rivet chunk` prints (and writes as its termination message): the commit record and more."""
    record = CommitRecord(
        chunk=1,
        key=KEY,
        rows=1000001,
        size_bytes=2026,
        content_fingerprint="xxh3:000001a2b3c4d5e6",
        content_md5="cGFydDowMDAwMDE/orders==",
        schema_fingerprint="xxh3:2026112300000001",
        key_range=["2026-11-23", "2026-11-24"],
        max_cursor="2026-11-23T00:00:01",
        content_crc32c="AAAwMQ==",
    )
    return {
        **record.to_dict(),
        "decision": "export",
        "resolved_prefix": "s3://orders/dt=2026-11-23/",
        "quarantined": ["_quarantine/orders-20261123t000001/part-000001.parquet"],
    }


def other_outputs() -> list[dict[str, Any]]:
    """Plan, finalize and run documents: fingerprints, prefixes and run ids."""
    plan = {
        "export": "orders",
        "run_id": "orders-20261123t000001",
        "resolved_prefix": "s3://orders/dt=2026-11-23/",
        "mode": "chunked",
        "chunk_column": "part",
        "key_range": ["2026-11-23", "2026-11-24"],
        "plan_fingerprint": "xxh3:000001parquet",
        "plan": {"mode": "chunked", "chunk_column": "part", "lo": 1, "hi": 1000001},
    }
    finalize = {
        "run_id": "orders-20261123t000001",
        "resolved_prefix": "s3://orders/dt=2026-11-23/",
        "manifest_fingerprint": "xxh3:0000012026112300",
        "success": "xxh3:0000012026112300\n",
        "part_count": 1,
    }
    run = {"exports": [{"export_name": "orders", "status": "success", "resolved_prefix": "file:///out/orders/"}]}
    return [plan, finalize, run]


@pytest.mark.parametrize("password", DATA_LIKE_PASSWORDS)
def test_commit_records_and_termination_messages_come_out_byte_identical(
    password: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log.add_secret(data_like_url(password))
    termination = tmp_path / "termination-log"
    args = argparse.Namespace(command="chunk", format="json", termination_log=str(termination))
    record = chunk_output()
    assert any(word in json.dumps(record) for word in password.split(":") if len(word) >= 3)
    for doc in [record, *other_outputs()]:
        expected = json.dumps(doc, separators=(",", ":"))
        emit(doc, args)
        assert capsys.readouterr().out == expected + "\n"
        assert termination.read_text(encoding="utf-8") == expected
        assert log.scrub_obj(doc) == doc
    emit(record, args)
    capsys.readouterr()
    read_back = CommitRecord.from_dict(json.loads(termination.read_text(encoding="utf-8")))  # as the operator does
    assert read_back.key == KEY and read_back.to_dict() == CommitRecord.from_dict(record).to_dict()


@pytest.mark.parametrize("password", DATA_LIKE_PASSWORDS)
def test_free_text_quoting_the_whole_password_is_masked_and_keys_in_it_are_kept(
    password: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = data_like_url(password)
    log.add_secret(url)
    termination = tmp_path / "termination-log"
    args = argparse.Namespace(command="finalize", format="json", termination_log=str(termination))
    encoded = quote(password, safe="")
    message = (
        f"finalize: {KEY} is recorded as committed but missing;"
        f" connecting to {url} failed; raw {password} ; encoded {encoded} ;"
        f" bare postgresql://rivet:{password}@other:5432/x"
    )
    emit_error(args, "contract", True, log.scrub(message), 1, reason="PartMissing")
    for text in (capsys.readouterr().out, termination.read_text(encoding="utf-8")):
        doc = json.loads(text)
        out = doc["error"]["message"]
        assert f"{KEY} is recorded as committed but missing" in out or password in KEY, out
        assert doc["error"]["reason"] == "PartMissing" and doc["error"]["kind"] == "contract"
        assert "raw *** ;" in out and "encoded *** ;" in out, out
        assert "postgresql://***@db.example:5432/shop" in out and "postgresql://***@other:5432/x" in out
        assert password not in out and encoded not in out, out


def test_bare_pieces_of_a_password_stay_in_free_text() -> None:
    log.add_secret(data_like_url("Xy9:part"))
    log.add_secret(data_like_url("Qz:000001"))
    text = f"finalize: {KEY} is recorded as committed but missing (chunk 1 of 2026-11-23, rows 000001)"
    assert log.scrub(text) == text
    assert log.scrub("login Xy9:part refused, Xy9%3Apart too") == "login *** refused, *** too"
    assert log.scrub("dsn user=rivet password=Xy9 host=h") == "dsn user=rivet password=*** host=h"
    assert (
        log.scrub('could not translate host name "part@db.example"') == 'could not translate host name "***@db.example"'
    )


def test_only_free_text_fields_are_redacted() -> None:
    assert {"message", "error", "hint"} <= FREE_TEXT_FIELDS
    secrets = ("Zx9SecretQv",)
    doc = {
        "key": "out/Zx9SecretQv/part-000001.parquet",
        "message": "Zx9SecretQv",
        "error": {"kind": "Zx9SecretQv", "message": "Zx9SecretQv", "reason": "Zx9SecretQv"},
        "errors": [{"export_name": "Zx9SecretQv", "message": "Zx9SecretQv"}],
        "exports": [{"status": "failed", "error": "Zx9SecretQv", "resolved_prefix": "s3://b/Zx9SecretQv/"}],
        "note": "Zx9SecretQv",
        "hint": ["Zx9SecretQv"],
    }
    assert redact_obj(doc, secrets) == {
        "key": "out/Zx9SecretQv/part-000001.parquet",
        "message": "***",
        "error": {"kind": "Zx9SecretQv", "message": "***", "reason": "Zx9SecretQv"},
        "errors": [{"export_name": "Zx9SecretQv", "message": "***"}],
        "exports": [{"status": "failed", "error": "***", "resolved_prefix": "s3://b/Zx9SecretQv/"}],
        "note": "***",
        "hint": ["***"],
    }
    assert redact_obj("a bare string is free text: Zx9SecretQv", secrets) == "a bare string is free text: ***"
