"""The working state of one decide call: the status being built, the actions, the requeue (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rivet_operator.api import status as status_api
from rivet_operator.controller.model import Action, Decision, Delete, Emit, Observed, PatchStatus, Settings

MESSAGE_LIMIT = 1024


class Step:
    def __init__(self, obs: Observed, settings: Settings) -> None:
        self.obs = obs
        self.settings = settings
        self.status: dict[str, Any] = dict(obs.status)
        self.actions: list[Action] = []
        self.requeue: float | None = None
        self.deleted: set[str] = set()

    # -- status -------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        value = self.status.get(key)
        return default if value is None else value

    def set(self, **values: Any) -> None:
        self.status.update(values)

    def phase(self, phase: str, reason: str, message: str) -> None:
        """Phase, message and the three conditions, all at the generation this reconcile observed."""
        gen = self.obs.generation
        self.status["phase"] = phase
        self.status["message"] = message[:MESSAGE_LIMIT]
        self.status["observedGeneration"] = gen
        self.status["conditions"] = status_api.for_phase(
            self.status.get("conditions") or [], phase, reason, message, gen, self.obs.now_s
        )

    def observe_generation(self) -> None:
        """A spec edit that changes nothing for the run: the same phase, at the new generation."""
        if self.status.get("observedGeneration") == self.obs.generation:
            return
        conds = self.status.get("conditions") or []
        phase = self.status.get("phase") or "Pending"
        lead = status_api.get(conds, "Stalled" if phase == "Failed" else "Ready") or {}
        self.phase(phase, str(lead.get("reason") or phase), str(self.status.get("message") or ""))

    # -- actions ------------------------------------------------------------------------------------
    def do(self, action: Action) -> None:
        if isinstance(action, Delete):
            if action.name in self.deleted:
                return
            self.deleted.add(action.name)
        self.actions.append(action)

    def event(
        self, reason: str, message: str, warning: bool = False, series: str | None = None, count: int = 1
    ) -> None:
        self.actions.append(Emit(reason, message[:MESSAGE_LIMIT], warning, series, count))

    def requeue_in(self, seconds: float) -> None:
        seconds = max(0.5, seconds)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def seconds_until(self, when: dt.datetime) -> float:
        return (when - self.obs.now).total_seconds()

    def decision(self) -> Decision:
        patch = status_api.merge_patch(self.obs.status, self.status)
        actions = list(self.actions)
        if patch:
            actions.append(PatchStatus(patch))
        return Decision(actions, self.requeue)
