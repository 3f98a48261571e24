"""The small immutable context one run works in, so the chunk path and the certifier take one argument
instead of a dozen positional ones, and every command builds it the same way."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rivet import __version__
from rivet.config.model import ExportConfig, Mode, RivetConfig
from rivet.contract.fingerprint import schema_fingerprint
from rivet.contract.plan import Chunk, Plan, plan_changes
from rivet.contract.prefix import resolve_prefix
from rivet.errors import ContractError, UsageError
from rivet.sources.base import Source
from rivet.sources.query import Query
from rivet.sources.sql import chunk_query, export_query, select_all

CLI_PRODUCER = f"rivet {__version__}"
OPERATOR_PRODUCER = f"rivet-operator {__version__}"


@dataclass(frozen=True)
class RunContext:
    cfg: RivetConfig
    exp: ExportConfig
    run_id: str
    run_date: dt.date
    plan: Plan
    schema: pa.Schema  # the relation's output schema (describe); unsupported types failed before this
    cursor: Any = None  # incremental: the last certified cursor value this run starts at (inclusive)
    producer: str = CLI_PRODUCER

    @property
    def prefix(self) -> str:
        return resolve_prefix(
            self.exp.destination.template, export=self.exp.name, date=self.run_date, run_id=self.run_id
        )

    @property
    def schema_fp(self) -> str:
        return schema_fingerprint(self.schema)

    @property
    def batch_size(self) -> int:
        return self.cfg.source.tuning.batch_size

    def query(self, chunk: Chunk) -> Query:
        """The rows of one chunk: every chunk path (run, chunk Job, repair) reads through this."""
        engine = self.cfg.source.type
        if self.exp.mode is Mode.CHUNKED:
            return chunk_query(engine, self.exp, chunk)
        return export_query(engine, self.exp, self.schema, run_date=self.run_date, cursor=self.cursor)


def recorded_context(
    cfg: RivetConfig,
    exp: ExportConfig,
    run_id: str,
    run_date: dt.date,
    plan_doc: dict[str, Any],
    source: Source,
    *,
    cursor: Any = None,
    producer: str = OPERATOR_PRODUCER,
) -> RunContext:
    """The context of a planned run, for the Jobs that continue it (chunk, finalize): the plan is taken
    as `rivet plan` printed it, and refused if its fingerprint, the definition or the schema changed since."""
    from rivet.engine.planning import chunk_key_kind, plan_for

    recorded = load_plan(plan_doc, source.engine.value, exp)
    schema = source.describe(select_all(source.engine, exp))
    kind = chunk_key_kind(schema, exp) if exp.mode is Mode.CHUNKED else None
    rebuilt = plan_for(source.engine, exp, recorded.lo, recorded.hi, kind, recorded.boundaries)
    changed = plan_changes(recorded, rebuilt)
    if changed:
        raise ContractError(
            f"the export definition no longer matches the run's plan ({'; '.join(changed)}): start a new run",
            reason="PlanChanged",
        )
    planned_schema = plan_doc.get("schema_fingerprint")
    if planned_schema and planned_schema != schema_fingerprint(schema):
        raise ContractError(
            "the source schema changed since the run was planned: start a new run", reason="SchemaChanged"
        )
    return RunContext(cfg, exp, run_id, run_date, recorded, schema, cursor, producer)


def load_plan(plan_doc: dict[str, Any], engine: str, exp: ExportConfig) -> Plan:
    """The Plan inside `rivet plan`'s output, rebuilt with today's definition and checked against the
    fingerprint printed beside it: a changed query or table, or an edited plan, is refused."""
    try:
        plan = Plan.from_recorded(engine, exp.table or (exp.query or "").strip(), dict(plan_doc["plan"]))
        printed = str(plan_doc["plan_fingerprint"])
    except (KeyError, TypeError, ValueError):
        raise UsageError("--plan must be the JSON object printed by `rivet plan`") from None
    if printed != plan.fingerprint:
        raise ContractError(
            f"--plan does not match the export definition (fingerprint {printed}, now {plan.fingerprint}):"
            " the table, query or settings changed since planning, or the plan was edited; start a new run",
            reason="PlanChanged",
        )
    return plan
