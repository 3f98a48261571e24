"""Redaction: registered secrets (and the pieces a URL parser makes of a password) never reach output,
and structured output is redacted field by field, so values that merely look like secrets survive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rivet import log
from rivet.config.model import DestinationConfig, DestinationType
from rivet.destinations.azure_auth import open_azure
from rivet.destinations.s3_auth import open_s3
from rivet.redact import password_pieces, redact_obj, redact_text, secret_values, url_password


@pytest.fixture(autouse=True)
def fresh_secrets() -> Iterator[None]:
    saved = set(log._secrets)
    log._secrets.clear()
    yield
    log._secrets.clear()
    log._secrets.update(saved)


def test_scrub_obj_keeps_a_base64_md5_that_looks_like_a_sig_pair() -> None:
    log.add_secret("Zx9SecretQv")
    doc = {
        "ok": True,
        "parts": [
            {"key": "out/key=1/part-000001.parquet", "content_md5": "ab/sig=cd==", "rows": 3},
            {"content_md5": "Qk+token=9w==", "schema_fingerprint": "sha256:0f/pwd=1"},
        ],
        "error": {"message": "denied for key Zx9SecretQv via https://u:pw@host/x?sig=abc&sv=1", "n": None},
        "list": ("Zx9SecretQv", 1.5),
    }
    out = log.scrub_obj(doc)
    assert out["parts"][0] == {"key": "out/key=1/part-000001.parquet", "content_md5": "ab/sig=cd==", "rows": 3}
    assert out["parts"][1] == {"content_md5": "Qk+token=9w==", "schema_fingerprint": "sha256:0f/pwd=1"}
    message = out["error"]["message"]
    assert "Zx9SecretQv" not in message and "pw@" not in message and "sig=abc" not in message
    assert message == "denied for key *** via https://***@host/x?sig=***&sv=1"
    assert out["list"] == ["***", 1.5] and out["ok"] is True and out["error"]["n"] is None
    text = json.dumps(out)
    assert "ab/sig=cd==" in text and "Zx9SecretQv" not in text


def test_redacting_serialised_json_would_mangle_the_md5_which_is_why_scrub_obj_exists() -> None:
    # The old way (scrub(json.dumps(...))) still masks secrets, but redact before serialising.
    assert redact_obj({"content_md5": "ab/sig=cd=="}) == {"content_md5": "ab/sig=cd=="}
    assert redact_text("sv=2022&sig=abc") == "sv=2022&sig=***"
    assert redact_text("host=h password=hunter22 user=u") == "host=h password=*** user=u"


def test_non_json_values_are_stringified_then_redacted() -> None:
    log.add_secret("Zx9SecretQv")
    assert log.scrub_obj({"path": Path("/tmp/Zx9SecretQv")}) == {"path": "/tmp/***"}


def test_a_database_url_registers_its_password_and_the_pieces_parsers_cut() -> None:
    url = "postgresql://rivet:Kq7/Lm#Np?Rs@Tv@127.0.0.1:5432/rivet"
    assert url_password(url) == "Kq7/Lm#Np?Rs@Tv"
    values = set(secret_values(url))
    assert {url, "Kq7/Lm#Np?Rs@Tv", "Kq7", "Kq7%2FLm%23Np%3FRs%40Tv"} <= values
    log.add_secret(url)
    for echoed in (
        "Port could not be cast to integer value as 'Kq7'",
        'could not translate host name "Tv@127.0.0.1" to address',
        'invalid integer value "Kq7/Lm" for connection option "port"',
        f"connecting to {url} failed",
    ):
        scrubbed = log.scrub(echoed)
        assert "Kq7" not in scrubbed and "Kq7/Lm#Np?Rs@Tv" not in scrubbed, scrubbed
    assert log.scrub("rivet at 127.0.0.1:5432, database rivet") == "rivet at 127.0.0.1:5432, database rivet"


def test_password_pieces_cover_decoded_and_encoded_spellings() -> None:
    pieces = set(password_pieces("Ab%2FCde%40Fgh"))
    assert {"Ab%2FCde%40Fgh", "Ab/Cde@Fgh", "Cde", "Fgh"} <= pieces
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
