"""RivetSchedule on the controller's rails (pure): the schedule package's decide, in the controller's terms.

`schedule.decide` is written against plain dicts (the schedule and the exports it owns) and returns its
own actions in the order to carry them out. This adapter feeds it from an `Observed` and turns its
actions into the controller's: CreateExport -> Create (409 checks the owner reference), DeleteExport ->
Delete of a RivetExport, PatchStatus -> PatchStatus (a merge patch: None removes a key), Event -> Emit,
RequeueAt -> requeue_after. The Decision keeps decide's order (`in_order`): the run is created before
the status that names it, and finished runs are pruned only after the status has taken their cursor.
"""

from __future__ import annotations

from typing import Any

from rivet_operator.api.spec import check_spec
from rivet_operator.controller.model import Create, Decision, Delete, Emit, Observed, PatchStatus, Settings
from rivet_operator.schedule import decide as schedule_decide

MIN_REQUEUE_S = 1.0
# a schedule also looks again at least this often, so a lost watch event or a clock jump costs at most this
MAX_REQUEUE_S = 3600.0


def decide_schedule(obs: Observed, settings: Settings) -> Decision:
    """One reconcile of a RivetSchedule: the exports it owns and the time -> ordered actions."""
    actions = schedule_decide.decide(obs.body, list(obs.children), obs.now, check_template=check_spec)
    return translate(obs, actions)


def rejected(obs: Observed, message: str) -> Decision:
    """The API server refused this tick's RivetExport (422, or 403 from a policy): stall, do not retry."""
    return translate(obs, schedule_decide.rejected(obs.body, message, obs.now))


def translate(obs: Observed, actions: list[schedule_decide.Action]) -> Decision:
    decision = Decision(in_order=True)
    for action in actions:
        if isinstance(action, schedule_decide.CreateExport):
            decision.actions.append(Create(action.body))
        elif isinstance(action, schedule_decide.DeleteExport):
            decision.actions.append(Delete("rivetexports", action.name))
        elif isinstance(action, schedule_decide.PatchStatus):
            decision.actions.append(PatchStatus(action.patch))
        elif isinstance(action, schedule_decide.Event):
            decision.actions.append(Emit(action.reason, action.message, action.type == schedule_decide.WARNING))
        elif isinstance(action, schedule_decide.RequeueAt):
            wait = (action.when - obs.now).total_seconds()
            decision.requeue_after = min(MAX_REQUEUE_S, max(MIN_REQUEUE_S, wait))
    return decision


def needs_visit(body: dict[str, Any]) -> bool:
    """Every event on a live schedule is worth a reconcile: schedules are few, and our own status patches
    are filtered out before this by their resourceVersion."""
    return not (body.get("metadata") or {}).get("deletionTimestamp")
