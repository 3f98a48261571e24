"""The operator's settings, from the environment the chart sets (one place reads it)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rivet_operator.api.policy import JobPolicy
from rivet_operator.controller.model import Settings
from rivet_operator.specs.jobs import Runtime

log = logging.getLogger("rivet_operator")
DEFAULT_ACTIVE_DEADLINE_S = 6 * 3600


def _json(env: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = env.get(name, "")
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        log.warning("%s is not JSON; ignored", name)
        value = {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class OperatorConfig:
    settings: Settings
    namespaces: tuple[str, ...] = ()
    workers: int = 4
    metrics_port: int = 0


def from_env(env: Mapping[str, str] = os.environ) -> OperatorConfig:
    """RIVET_IMAGE, RIVET_IMAGE_PULL_POLICY, RIVET_JOB_DEFAULTS (JSON), RIVET_JOB_POLICY (JSON),
    RIVET_JOB_ACTIVE_DEADLINE_SECONDS, RIVET_NAMESPACES, RIVET_WORKERS, RIVET_METRICS_PORT,
    RIVET_RETRY_BASE_SECONDS, RIVET_RETRY_CAP_SECONDS."""
    deadline = int(env.get("RIVET_JOB_ACTIVE_DEADLINE_SECONDS") or DEFAULT_ACTIVE_DEADLINE_S)
    # The chart's jobPolicy (values.yaml, toJson'd by the Deployment): what templates may ask; with
    # allowPrivileged on, the Jobs are no longer forced back to the restricted profile either.
    policy = JobPolicy.from_dict(_json(env, "RIVET_JOB_POLICY"))
    runtime = Runtime(
        image=env.get("RIVET_IMAGE", "rivet:dev"),
        pull_policy=env.get("RIVET_IMAGE_PULL_POLICY", "IfNotPresent"),
        defaults=_json(env, "RIVET_JOB_DEFAULTS"),
        active_deadline_s=deadline or None,
        restricted=not policy.allow_privileged,
    )
    settings = Settings(
        runtime=runtime,
        policy=policy,
        retry_base_s=float(env.get("RIVET_RETRY_BASE_SECONDS") or 10),
        retry_cap_s=float(env.get("RIVET_RETRY_CAP_SECONDS") or 300),
    )
    return OperatorConfig(
        settings=settings,
        namespaces=tuple(n for n in env.get("RIVET_NAMESPACES", "").split(",") if n),
        workers=max(1, int(env.get("RIVET_WORKERS") or 4)),
        metrics_port=int(env.get("RIVET_METRICS_PORT") or 0),
    )
