"""`make demo` is the README's first command: run it for real on the e2e cluster, as a user would.

The demo brings up (or reuses) the cluster, starts PostgreSQL and S3 on the address pods reach, installs
the chart into `rivet-demo`, applies a RivetExport, waits for Ready, checks manifest/_SUCCESS against
the status and runs a RivetValidation; `--cleanup` removes the release and the namespace afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster
from tests.unit.test_chart import find_helm

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_runs_end_to_end(cluster: Cluster, crds_installed: None) -> None:
    if not find_helm():
        pytest.skip("no helm binary: run `bash tests/cluster/helm.sh`")
    env = dict(os.environ)
    if not cluster.local:
        if not cluster.host_address:
            pytest.skip("no host address that pods reach (set RIVET_E2E_HOST_ADDRESS)")
        env.update(
            RIVET_DEMO_CONTEXT="current", RIVET_DEMO_HOST_ADDRESS=cluster.host_address, RIVET_DEMO_IMAGE=cluster.image
        )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.demo.demo", "--cleanup"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"demo exited {proc.returncode}\n{out[-8000:]}\n{proc.stderr[-4000:]}"
    assert "rivetexport.rivet.dev/orders condition met" in out
    assert "orders   Succeeded   True    8/8      200000" in out
    assert "_SUCCESS, status.success and status.manifest.fingerprint agree: True" in out
    assert "rivetvalidation.rivet.dev/orders-check condition met" in out
    assert "validation passed=True: passed: 8 parts verified (8 by checksum)" in out
    # credentials stay out of what the demo prints
    assert "--from-literal=url=postgresql://..." in out
    assert "postgresql://" not in out.replace("postgresql://...", ""), "a database URL was printed"
    # --cleanup left nothing behind
    gone = cluster.kubectl("get", "namespace", "rivet-demo", "-o", "name", check=False)
    phase = cluster.kubectl("get", "namespace", "rivet-demo", "-o", "jsonpath={.status.phase}", check=False)
    assert gone.returncode != 0 or phase.stdout == "Terminating"
