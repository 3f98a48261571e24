"""E2E plumbing for the operator: servers bound to the address pods reach, and the operator itself.

The operator runs on the host as a `kopf run` subprocess against the cluster's API server (Jobs still
run in pods, in the cluster). Running it in-cluster from the Helm chart is the chart's own e2e test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.fixtures import databases, objectstores

REPO = Path(__file__).resolve().parents[2]


def _on_bridge(cluster: Cluster, start: Callable[[str], Any], stop: Callable[[Any], None]) -> Iterator[Any]:
    """Start a server bound to the address pods reach (skipping when there is none); stop it after."""
    if not cluster.host_address:
        pytest.skip("no host address that pods reach (set RIVET_E2E_HOST_ADDRESS)")
    host = str(cluster.host_address)
    server = databases._start_or_skip(lambda: start(host))
    try:
        yield server
    finally:
        stop(server)


def _stop_process(server: Any) -> None:
    if server.process is not None:
        server.process.stop()


@pytest.fixture(scope="session")
def pod_pg(cluster: Cluster) -> Iterator[databases.DbServer]:
    """PostgreSQL bound to the bridge address: the test seeds it, chunk Jobs read it."""
    yield from _on_bridge(cluster, lambda h: databases.start_postgres(host=h), lambda s: s.stop())


@pytest.fixture(scope="session")
def pod_mysql(cluster: Cluster) -> Iterator[databases.DbServer]:
    yield from _on_bridge(cluster, lambda h: databases.start_mariadb(host=h), lambda s: s.stop())


@pytest.fixture(scope="session")
def pod_s3(cluster: Cluster) -> Iterator[objectstores.S3Server]:
    yield from _on_bridge(cluster, lambda h: objectstores.start_seaweedfs(host=h), _stop_process)


@pytest.fixture(scope="session")
def pod_azurite(cluster: Cluster) -> Iterator[objectstores.AzuriteServer]:
    yield from _on_bridge(cluster, lambda h: objectstores.start_azurite(host=h), _stop_process)


@dataclass
class Operator:
    """A `kopf run` of our handlers; kill() is SIGKILL (a crash), start() brings it back."""

    cluster: Cluster
    namespace: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    module: str = "rivet_operator.runtime.handlers"

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": self.cluster.kubeconfig,
            "RIVET_IMAGE": self.cluster.image,
            "RIVET_IMAGE_PULL_POLICY": self.cluster.pull_policy,
            "RIVET_NAMESPACES": self.namespace,
            "RIVET_RETRY_BASE_SECONDS": "2",
            **self.extra_env,
        }
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--namespace",
                self.namespace,
                "-m",
                self.module,
                "--log-format=json",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


KSTATUS_SRC = REPO / "tests" / "e2e" / "kstatus"
CACHE = Path(os.environ.get("RIVET_TESTBED_CACHE", "/var/cache/rivet-testbed"))


def go_env() -> dict[str, str]:
    """Go builds and module downloads cached by version under the test bed's cache (the Go proxy only)."""
    return {
        **os.environ,
        "GOPATH": str(CACHE / "go"),
        "GOMODCACHE": str(CACHE / "go" / "mod"),
        "GOCACHE": str(CACHE / "go" / "build"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }


def go_binary() -> str:
    import shutil

    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        pytest.skip("no Go toolchain to build the GitOps readers")
    return go


def build_go_tool(src: Path) -> Path:
    """Build the Go module in `src` once per content (go.sum + main.go) into the cache; return the binary."""
    import hashlib

    digest = hashlib.sha256((src / "go.sum").read_bytes() + (src / "main.go").read_bytes()).hexdigest()
    binary = CACHE / "bin" / f"{src.name}-{digest[:12]}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        subprocess.run([go_binary(), "build", "-o", str(tmp), "."], cwd=src, env=go_env(), check=True, timeout=900)
        tmp.rename(binary)
    return binary


@pytest.fixture(scope="session")
def kstatus() -> Any:
    """The real kstatus library (what cli-utils uses), built from tests/e2e/kstatus via the Go proxy.

    Returns a function: object JSON -> {"status": "Current|InProgress|Failed|...", "message": ...}.
    """
    import json

    binary = build_go_tool(KSTATUS_SRC)

    def compute(obj: dict[str, Any]) -> dict[str, str]:
        out = subprocess.run([str(binary)], input=json.dumps(obj), capture_output=True, text=True, check=True)
        return dict(json.loads(out.stdout))

    return compute


@pytest.fixture(scope="session")
def crds_installed(cluster: Cluster) -> None:
    """Apply the project's CRDs (as `kubectl apply -f crds/` does for users) and wait until they serve."""
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    for crd in (
        "rivetexports.rivet.dev",
        "rivetvalidations.rivet.dev",
        "rivetschedules.rivet.dev",
        "rivetledgers.rivet.dev",
    ):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


@pytest.fixture
def operator(cluster: Cluster, namespace: str, tmp_path: Path, crds_installed: None) -> Iterator[Operator]:
    op = Operator(cluster, namespace, tmp_path / "operator.log")
    op.start()
    try:
        yield op
    finally:
        op.stop()
        if os.environ.get("RIVET_E2E_SHOW_OPERATOR_LOG") == "1":
            print(op.logs()[-20000:])


def status(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj = cluster.get_json(kind, name, namespace=namespace)
    return dict(obj.get("status") or {})


def wait_phase(
    cluster: Cluster, namespace: str, kind: str, name: str, phases: tuple[str, ...], timeout: float = 600
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    st: dict[str, Any] = {}
    while time.monotonic() < deadline:
        st = status(cluster, namespace, kind, name)
        if st.get("phase") in phases:
            return st
        time.sleep(1)
    raise AssertionError(f"{kind}/{name} never reached {phases}; last status: {st}\n{cluster.describe(namespace)}")
