"""destination.conditional_writes: require (default) or warn, S3 only; anything else names the field."""

from __future__ import annotations

import pytest

from rivet.config import load_config_text
from rivet.errors import ConfigError

BASE = """
source: {{type: postgres, url_env: DB}}
exports:
  - name: o
    table: t
    destination: {{type: {kind}, {where}{extra}}}
"""


def load(kind: str, extra: str = "") -> object:
    where = "path: /tmp/x" if kind == "local" else "bucket: b, prefix: p/"
    return load_config_text(BASE.format(kind=kind, where=where, extra=extra), env={"DB": "postgresql://u@h/d"})


def test_conditional_writes_defaults_to_require_and_takes_warn() -> None:
    assert load("s3").exports[0].destination.conditional_writes == "require"  # type: ignore[attr-defined]
    cfg = load("s3", ", conditional_writes: warn")
    assert cfg.exports[0].destination.conditional_writes == "warn"  # type: ignore[attr-defined]


def test_conditional_writes_refuses_other_values_and_other_stores() -> None:
    with pytest.raises(ConfigError, match=r"destination\.conditional_writes.*use require"):
        load("s3", ", conditional_writes: never")
    with pytest.raises(ConfigError, match="conditional_writes"):
        load("local", ", conditional_writes: warn")
