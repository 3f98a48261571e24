"""The controller's plain data: what a reconcile observed, what it decided, and operator-wide settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from rivet_operator.api.policy import JobPolicy
from rivet_operator.controller.outcomes import JobView
from rivet_operator.specs.jobs import Runtime
from rivet_operator.specs.names import Owner

RERUN_ANNOTATION = "rivet.dev/rerun"


@dataclass(frozen=True)
class Settings:
    """Operator-wide: the Jobs' runtime and policy, retry backoff, requeue periods (from the chart's env)."""

    runtime: Runtime = field(default_factory=Runtime)
    policy: JobPolicy = field(default_factory=JobPolicy)
    retry_base_s: float = 10.0
    retry_cap_s: float = 300.0
    active_requeue_s: float = 60.0  # safety net for objects with Jobs in flight (watch events come first)
    fence_poll_s: float = 2.0  # waiting for an earlier run's pods to go (pods are not watched)

    def backoff(self, failures: int) -> float:
        """Delay before the attempt after `failures` failures: base, doubling, capped."""
        return float(min(self.retry_cap_s, self.retry_base_s * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class PodView:
    name: str
    run: str
    active: bool
    component: str = ""


@dataclass(frozen=True)
class ConfigMapView:
    name: str
    run: str
    component: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerView:
    """A RivetLedger shard: the commit records the operator wrote into its status."""

    name: str
    run: str
    records: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """Everything one reconcile of one object works from (read by the shell, decided on purely)."""

    owner: Owner
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    now: dt.datetime
    annotations: dict[str, str] = field(default_factory=dict)
    jobs: tuple[JobView, ...] = ()
    pods: tuple[PodView, ...] = ()
    configmaps: tuple[ConfigMapView, ...] = ()
    ledgers: tuple[LedgerView, ...] = ()
    ledger_complete: bool = True  # every shard of the run was read (False: only those that can change)
    export: dict[str, Any] | None = None  # RivetValidation: the referenced RivetExport, when it exists
    body: dict[str, Any] = field(default_factory=dict)  # the object as read (a schedule decides on all of it)
    children: tuple[dict[str, Any], ...] = ()  # RivetSchedule: the RivetExports carrying its label

    @property
    def now_s(self) -> str:
        return stamp(self.now)


def stamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


# -- actions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    """Create a Job or ConfigMap; an existing one counts as done if its owner reference is ours."""

    body: dict[str, Any]


@dataclass(frozen=True)
class Put:
    """Create a ConfigMap, or replace what holds its name (the finalize transport: nothing another user
    wrote there may stay)."""

    body: dict[str, Any]


@dataclass(frozen=True)
class WriteLedger:
    """Record one chunk's commit record in its RivetLedger shard's status (the shard is created first if it
    does not exist), before the Job that reported it is deleted."""

    body: dict[str, Any]  # the RivetLedger shard
    key: str  # chunk-NNNNNN.json
    record: str  # the record as it will be handed to finalize, byte for byte
    rows: int = 0
    size_bytes: int = 0


@dataclass(frozen=True)
class Delete:
    """Delete a Job (propagationPolicy Background), ConfigMap or RivetExport; a missing one counts as done."""

    plural: str  # jobs | configmaps | rivetexports
    name: str


@dataclass(frozen=True)
class PatchStatus:
    patch: dict[str, Any]


@dataclass(frozen=True)
class Emit:
    """An Event. With `series`, one Event per (object, reason, series) whose count is updated, instead of one
    more Event per occurrence (a chunk retried 20 times is one line in `kubectl describe`)."""

    reason: str
    message: str
    warning: bool = False
    series: str | None = None
    count: int = 1


Action = Create | Put | WriteLedger | Delete | PatchStatus | Emit
# The order the shell applies them in: records before the status that counts them, the status before the
# deletion of the Jobs whose results it holds, and new Jobs after the status that names their attempt.
ORDER = {WriteLedger: 0, PatchStatus: 1, Emit: 2, Put: 3, Create: 3, Delete: 4}


@dataclass
class Decision:
    actions: list[Action] = field(default_factory=list)
    requeue_after: float | None = None
    in_order: bool = False  # the actions are already in the order to apply them (a schedule's decision)

    def ordered(self) -> list[Action]:
        if self.in_order:
            return list(self.actions)
        creates_cm = [a for a in self.actions if isinstance(a, Put | Create) and a.body.get("kind") == "ConfigMap"]
        rest = [a for a in self.actions if a not in creates_cm]
        return creates_cm + sorted(rest, key=lambda a: ORDER[type(a)])

    def of(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]
