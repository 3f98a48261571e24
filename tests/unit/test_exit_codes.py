"""Exit codes with meanings: one mapping (`rivet.errors`), used by every command of the CLI.

0 success, 1 permanent, 2 usage, 3 retryable, 4 integrity, 5 schema drift (the table is in rivet/errors.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rivet import cli
from rivet.cli import verbs
from rivet.engine import signals
from rivet.errors import (
    EXIT_INTEGRITY,
    EXIT_OK,
    EXIT_PERMANENT,
    EXIT_RETRYABLE,
    EXIT_SCHEMA_DRIFT,
    EXIT_USAGE,
    ConfigError,
    ContractError,
    DestinationError,
    RivetError,
    SourceError,
    UnsupportedTypeError,
    UsageError,
    combine,
    exit_code_for,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("--plan must be JSON"), EXIT_USAGE),
        (ConfigError("exports[0].table", "is required"), EXIT_PERMANENT),
        (SourceError("syntax error at or near"), EXIT_PERMANENT),
        (SourceError("authentication failed"), EXIT_PERMANENT),
        (UnsupportedTypeError('column "d" is interval'), EXIT_PERMANENT),
        (SourceError("connection reset", permanent=False), EXIT_RETRYABLE),
        (DestinationError("SlowDown: throttled", permanent=False), EXIT_RETRYABLE),
        (DestinationError("bucket does not exist"), EXIT_PERMANENT),
        (ContractError("already holds _SUCCESS", reason="SuccessMarkerPresent"), EXIT_PERMANENT),
        (ContractError("the plan changed", reason="PlanChanged"), EXIT_PERMANENT),
        (ContractError("part-000001.parquet is missing", reason="PartMissing"), EXIT_INTEGRITY),
        (ContractError("part-000001.parquet differs", reason="PartMismatch"), EXIT_INTEGRITY),
        (ContractError("the source schema changed", reason="SchemaChanged"), EXIT_SCHEMA_DRIFT),
        (RivetError("anything else"), EXIT_PERMANENT),
        (ValueError("a bug"), EXIT_RETRYABLE),  # internal: reported not permanent, like the operator retries it
    ],
)
def test_each_failure_maps_to_its_code(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
    if isinstance(error, RivetError):
        assert error.exit_code == code
        assert (code == EXIT_RETRYABLE) == (not error.permanent)  # 3 exactly when a retry can help


@pytest.mark.parametrize(
    ("codes", "combined"),
    [
        ([], EXIT_OK),
        ([0, 0], EXIT_OK),
        ([0, 3], EXIT_RETRYABLE),
        ([3, 3], EXIT_RETRYABLE),  # 3 only when every failure is retryable
        ([3, 4], EXIT_INTEGRITY),
        ([4, 5], EXIT_SCHEMA_DRIFT),
        ([3, 5, 1], EXIT_PERMANENT),
        ([1, 2], EXIT_USAGE),
        ([0, 130], 130),
    ],
)
def test_several_outcomes_report_the_most_urgent(codes: list[int], combined: int) -> None:
    assert combine(codes) == combined


# --- the CLI: main() maps, and the JSON error carries exit_code -------------------------------------------


@pytest.fixture
def no_signal_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signals, "install", lambda: None)  # keep pytest's own SIGTERM handling


def plan_failing_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def fail(args: Any) -> int:
        raise exc

    monkeypatch.setitem(cli.COMMANDS, "plan", fail)


PLAN_ARGS = ["plan", "-c", "rivet.yaml", "-e", "t", "--run-id", "r1"]


@pytest.mark.usefixtures("no_signal_handler")
@pytest.mark.parametrize(
    ("exc", "code", "permanent"),
    [
        (SourceError("server closed the connection", permanent=False), 3, False),
        (SourceError("bad SQL"), 1, True),
        (ContractError("schema changed since planning", reason="SchemaChanged"), 5, True),
        (ContractError("part missing", reason="PartMissing"), 4, True),
        (UsageError("--plan must be JSON"), 2, True),
        (RuntimeError("unexpected"), 3, False),
        (signals.Terminated(), 3, False),
    ],
)
def test_main_returns_the_code_and_writes_it_into_the_json_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    exc: BaseException,
    code: int,
    permanent: bool,
) -> None:
    plan_failing_with(monkeypatch, exc)
    term = tmp_path / "termination-log"
    assert cli.main([*PLAN_ARGS, "--termination-log", str(term)]) == code
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["error"]["exit_code"] == code and out["error"]["permanent"] is permanent
    assert json.loads(term.read_text())["error"]["exit_code"] == code  # what the operator reads
    if isinstance(exc, ContractError):
        assert out["error"]["reason"] == exc.reason


@pytest.mark.usefixtures("no_signal_handler")
def test_bad_flags_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--no-such-flag"]) == EXIT_USAGE
    assert "rivet: error:" in capsys.readouterr().err


# --- validate: 4 when a prefix does not verify --------------------------------------------------------------


def write_config(tmp_path: Path, path_template: str) -> Path:
    doc = {
        "source": {"type": "postgres", "url_env": "RIVET_UNSET_URL"},
        "exports": [{"name": "t", "table": "t", "destination": {"type": "local", "path": path_template}}],
        "state": {"path": str(tmp_path / "state.db")},
    }
    cfg = tmp_path / "rivet.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    return cfg


@pytest.mark.usefixtures("no_signal_handler")
def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = tmp_path / "out"
    cfg = str(write_config(tmp_path, str(prefix)))
    prefix.mkdir()
    assert cli.main(["validate", "-c", cfg]) == EXIT_PERMANENT  # nothing at the prefix: a wrong date or prefix
    (prefix / "part-000001.parquet").write_bytes(b"PAR1")
    assert cli.main(["validate", "-c", cfg]) == EXIT_OK  # legacy (no manifest): reported, not a failure
    (prefix / "manifest.json").write_bytes(b"\x00 not json")
    capsys.readouterr()
    assert cli.main(["validate", "-c", cfg, "--format", "json"]) == EXIT_INTEGRITY
    report = json.loads(capsys.readouterr().out)
    assert report["exports"][0]["verification"]["passed"] is False
    templated = str(write_config(tmp_path, str(tmp_path / "{run_id}")))
    assert cli.main(["validate", "-c", templated]) == EXIT_USAGE  # the template needs --run-id


def test_the_verdict_codes() -> None:
    passed = {"verification": {"passed": True, "legacy_run": False}}
    legacy = {"verification": {"passed": False, "legacy_run": True}}
    failed = {"verification": {"passed": False, "legacy_run": False}}
    assert verbs._validate_code({"exports": [passed, legacy], "errors": []}) == EXIT_OK
    assert verbs._validate_code({"exports": [passed, failed], "errors": []}) == EXIT_INTEGRITY
    assert verbs._reconcile_code({"mismatch": 0, "unknown": 2}) == EXIT_OK
    assert verbs._reconcile_code({"mismatch": 1}) == EXIT_INTEGRITY


# --- run over several exports: the most urgent outcome ------------------------------------------------------


@pytest.mark.usefixtures("no_signal_handler")
@pytest.mark.parametrize(
    ("failures", "code"),
    [
        ({"a": SourceError("reset", permanent=False), "b": SourceError("reset", permanent=False)}, 3),
        ({"a": SourceError("reset", permanent=False), "b": ContractError("drift", reason="SchemaChanged")}, 5),
        ({"a": ContractError("drift", reason="SchemaChanged"), "b": SourceError("bad SQL")}, 1),
    ],
)
def test_run_reports_the_most_urgent_export_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failures: dict[str, RivetError], code: int
) -> None:
    import rivet.commands.run as run_module

    def fake_run_export(cfg: Any, exp: Any, opts: Any, state: Any) -> Any:
        raise failures[exp.name]

    monkeypatch.setattr(run_module, "run_export", fake_run_export)
    doc = {
        "source": {"type": "postgres", "url": "postgresql://u:pw@127.0.0.1:1/db"},
        "exports": [
            {"name": n, "table": n, "destination": {"type": "local", "path": str(tmp_path / n)}} for n in failures
        ],
        "state": {"path": str(tmp_path / "state.db")},
    }
    cfg = tmp_path / "rivet.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    assert cli.main(["run", "-c", str(cfg)]) == code
