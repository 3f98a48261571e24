"""spec.columns reaches the engine as the export's `columns:` (exact text or a decimal that must fit), is
checked by the engine's own loader naming the spec field, and is run-defining."""

from __future__ import annotations

import copy

import pytest
import yaml

from rivet_operator.api.crds import all_crds
from rivet_operator.api.spec import SpecError, check_spec, render_yaml, run_fingerprint
from tests.unit.operator_sim import SPEC


def test_columns_render_to_the_engine_and_define_the_run() -> None:
    spec = {**copy.deepcopy(SPEC), "columns": {"amount": "decimal(38,10)", "note": "string"}}
    doc = yaml.safe_load(render_yaml("orders", spec))
    assert doc["exports"][0]["columns"] == {"amount": "decimal(38,10)", "note": "string"}
    cfg = check_spec("orders", spec)
    assert cfg.exports[0].columns  # the engine took it
    assert run_fingerprint("orders", spec) != run_fingerprint("orders", SPEC)
    rule = all_crds()["rivet.dev_rivetexports.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert "self.spec.columns == oldSelf.spec.columns" in rule["x-kubernetes-validations"][0]["rule"]


def test_a_bad_column_type_names_the_spec_field() -> None:
    spec = {**copy.deepcopy(SPEC), "columns": {"amount": "decimal(39,2)"}}
    with pytest.raises(SpecError, match=r"^spec\.columns\.amount: .*decimal\(p,s\)"):
        check_spec("orders", spec)
