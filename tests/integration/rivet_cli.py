"""Helpers to drive the real `rivet` CLI in a subprocess, as users and Jobs do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def write_config(
    path: Path,
    source_url: str,
    exports: list[dict[str, Any]],
    engine: str = "postgres",
    state: Path | None = None,
    tuning: dict[str, Any] | None = None,
) -> Path:
    doc: dict[str, Any] = {"source": {"type": engine, "url_env": "RIVET_TEST_DB_URL"}, "exports": exports}
    if tuning:
        doc["source"]["tuning"] = tuning
    doc["state"] = {"path": str(state or path.parent / "state.db")}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.environ.setdefault("RIVET_TEST_DB_URL", "")
    return path


def rivet(
    *args: str,
    env: dict[str, str] | None = None,
    db_url: str | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> Result:
    full_env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(env or {})}
    if db_url is not None:
        full_env["RIVET_TEST_DB_URL"] = db_url
    proc = subprocess.run(
        [sys.executable, "-m", "rivet", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def popen(*args: str, env: dict[str, str] | None = None, db_url: str | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", **(env or {})}
    if db_url is not None:
        full_env["RIVET_TEST_DB_URL"] = db_url
    return subprocess.Popen(
        [sys.executable, "-m", "rivet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
