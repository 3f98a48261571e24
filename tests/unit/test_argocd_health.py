"""The shipped Argo CD health Lua, run by a real Lua 5.4 interpreter over the statuses the operator writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rivet_operator.api.status import for_phase

LUA = Path(__file__).resolve().parents[2] / "docs" / "argocd-health.lua"


def lua_literal(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for this text
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"


def health(obj: dict[str, Any]) -> dict[str, str]:
    lua = shutil.which("lua5.4") or shutil.which("lua")
    if lua is None:
        pytest.skip("no Lua interpreter (apt-get install lua5.4)")
    script = (
        f"obj = {lua_literal(obj)}\nlocal function check()\n{LUA.read_text()}\nend\n"
        "local hs = check()\nprint(hs.status .. '\\t' .. (hs.message or ''))\n"
    )
    out = subprocess.run([lua, "-"], input=script, capture_output=True, text=True, check=True).stdout.strip()
    status, _, message = out.partition("\t")
    return {"status": status, "message": message}


def export(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "orders", "generation": generation}}
    if status is not None:
        obj["status"] = status
    return obj


def test_new_object_is_progressing() -> None:
    assert health(export(1, None))["status"] == "Progressing"
    assert health(export(1, {"observedGeneration": -1}))["status"] == "Progressing"


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("Pending", "Progressing"),
        ("Running", "Progressing"),
        ("Succeeded", "Healthy"),
        ("Failed", "Degraded"),
        ("Suspended", "Suspended"),
    ],
)
def test_phases_map_to_argo_health(phase: str, expected: str) -> None:
    conds = for_phase([], phase, "Reason", "message text", 2, "2026-01-01T00:00:00Z")
    assert health(export(2, {"observedGeneration": 2, "phase": phase, "conditions": conds}))["status"] == expected


def test_stale_generation_is_progressing_even_if_ready() -> None:
    conds = for_phase([], "Succeeded", "Succeeded", "ok", 1, "t")
    assert (
        health(export(2, {"observedGeneration": 1, "phase": "Succeeded", "conditions": conds}))["status"]
        == "Progressing"
    )
