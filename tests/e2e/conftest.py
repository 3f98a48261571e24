"""End-to-end fixtures: a real Kubernetes cluster, the project image, a namespace per test.

Which cluster:
- KUBECONFIG set in the environment: that cluster (kind on a laptop, the image loaded with
  `kind load docker-image rivet:dev`). RIVET_E2E_IMAGE names the image (default
  docker.io/library/rivet:dev), RIVET_E2E_HOST_ADDRESS an address of this host that pods reach
  (tests bind their servers to it; tests that need one skip without it), RIVET_E2E_KUBECTL the
  kubectl to use (default: the pinned one if built, else `kubectl` on PATH).
- otherwise the local test bed of tests/cluster (`tests/cluster/cluster.sh up` and
  `tests/cluster/image.sh`); the tests skip with a message saying so when it is not up.
RIVET_E2E_REQUIRE_CLUSTER=1 (or RIVET_REQUIRE_SERVERS=1) turns those skips into failures (CI).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

CACHE_DIR = Path(os.environ.get("RIVET_TESTBED_CACHE", "/var/cache/rivet-testbed"))
STATE_DIR = Path(os.environ.get("RIVET_TESTBED_STATE", "/var/lib/rivet-testbed"))
# Written by tests/cluster/cluster.sh up: kubeconfig, kubectl, image, host_address, ...
TESTBED_JSON = STATE_DIR / "testbed.json"
DEFAULT_IMAGE = "docker.io/library/rivet:dev"


class KubectlError(RuntimeError):
    pass


@dataclasses.dataclass
class Cluster:
    kubeconfig: str
    image: str
    host_address: str | None
    kubectl_path: str
    pull_policy: str = "Never"
    local: bool = False

    # ------------------------------------------------------------------ kubectl
    def kubectl(
        self,
        *args: str,
        namespace: str | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.kubectl_path, "--kubeconfig", self.kubeconfig]
        if namespace:
            cmd += ["--namespace", namespace]
        cmd += list(args)
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}\n{proc.stdout.strip()}"
            )
        return proc

    def get_json(self, *args: str, namespace: str | None = None) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json", namespace=namespace).stdout)

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]] | str, namespace: str | None = None) -> None:
        if not isinstance(manifest, str):
            docs = manifest if isinstance(manifest, list) else [manifest]
            manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        self.kubectl("apply", "-f", "-", namespace=namespace, input=manifest)

    def create(self, manifest: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        out = self.kubectl("create", "-o", "json", "-f", "-", namespace=namespace, input=json.dumps(manifest))
        created: dict[str, Any] = json.loads(out.stdout)
        return created

    # ------------------------------------------------------------------ waiting
    def wait_for(self, what: str, predicate: Any, timeout: float = 120, interval: float = 1.0) -> Any:
        """Poll predicate() until it returns something truthy; return that."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            last = predicate()
            if last:
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
            time.sleep(interval)

    def wait_job(self, name: str, namespace: str, timeout: float = 180) -> str:
        """Wait until Job `name` has a Complete or Failed condition; return which."""

        def finished() -> str | None:
            job = self.get_json("job", name, namespace=namespace)
            for cond in job.get("status", {}).get("conditions", []):
                if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                    return str(cond["type"])
            return None

        try:
            return str(self.wait_for(f"job {namespace}/{name}", finished, timeout=timeout))
        except TimeoutError:
            raise TimeoutError(f"job {namespace}/{name} did not finish:\n{self.describe(namespace)}") from None

    def wait_default_serviceaccount(self, namespace: str) -> None:
        """A new namespace's default ServiceAccount comes from the controller manager, shortly after;
        pods created before it exists are refused."""
        self.wait_for(
            f"serviceaccount {namespace}/default",
            lambda: self.kubectl("get", "serviceaccount", "default", namespace=namespace, check=False).returncode == 0,
            timeout=60,
            interval=0.3,
        )

    def job_pods(self, name: str, namespace: str) -> list[dict[str, Any]]:
        pods = self.get_json("pods", "-l", f"job-name={name}", namespace=namespace)["items"]
        return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])

    def describe(self, namespace: str) -> str:
        """Everything useful to debug a namespace: objects, events, pod logs."""
        parts = []
        for args in (
            ("get", "all", "-o", "wide"),
            ("get", "events", "--sort-by=.lastTimestamp"),
            ("describe", "pods"),
        ):
            proc = self.kubectl(*args, namespace=namespace, check=False)
            parts.append(f"$ kubectl -n {namespace} {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ manifests
    def job_manifest(
        self,
        name: str,
        command: list[str],
        *,
        backoff_limit: int = 0,
        env: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        **pod_spec: Any,
    ) -> dict[str, Any]:
        """A Job running `command` in the project image (non-root, no pull)."""
        container: dict[str, Any] = {
            "name": "main",
            "image": self.image,
            "imagePullPolicy": self.pull_policy,
            "command": command,
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "backoffLimit": backoff_limit,
                "template": {
                    "metadata": {"labels": labels or {}},
                    "spec": {
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 2,
                        "automountServiceAccountToken": pod_spec.pop("automountServiceAccountToken", False),
                        "containers": [container],
                        **pod_spec,
                    },
                },
            },
        }


class Helm:
    """The helm CLI against one cluster, with its caches and config under `home` (nothing in ~)."""

    def __init__(self, binary: str, cluster: Cluster, home: Path) -> None:
        self.binary = binary
        self.cluster = cluster
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        cmd = [self.binary, "--kubeconfig", self.cluster.kubeconfig, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}")
        return proc.stdout


def _kubectl_path() -> str:
    if os.environ.get("RIVET_E2E_KUBECTL"):
        return os.environ["RIVET_E2E_KUBECTL"]
    if TESTBED_JSON.is_file():
        path = json.loads(TESTBED_JSON.read_text()).get("kubectl")
        if path and os.access(path, os.X_OK):
            return str(path)
    pinned = sorted(CACHE_DIR.glob("k8s-v*/bin/kubectl"))
    if pinned:
        return str(pinned[-1])
    found = shutil.which("kubectl")
    if not found:
        _unavailable("no kubectl: build the pinned one with tests/cluster/build-k8s.sh or set RIVET_E2E_KUBECTL")
    return found


def _reachable(kubectl: str, kubeconfig: str) -> str | None:
    """None when the API server answers /readyz, else why not."""
    try:
        proc = subprocess.run(
            [kubectl, "--kubeconfig", kubeconfig, "--request-timeout=10s", "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if proc.returncode == 0 else (proc.stderr.strip() or proc.stdout.strip())


def _local_image_present(info: dict[str, Any], image: str) -> bool | None:
    sock = info.get("containerd_socket")
    if not sock or not shutil.which("ctr") or os.geteuid() != 0:
        return None  # cannot tell
    proc = subprocess.run(
        ["ctr", "-a", sock, "-n", "k8s.io", "images", "ls", "-q"], capture_output=True, text=True, timeout=30
    )
    return image in proc.stdout.split() if proc.returncode == 0 else None


def _unavailable(why: str) -> NoReturn:
    """Skip, or fail when RIVET_E2E_REQUIRE_CLUSTER=1 or RIVET_REQUIRE_SERVERS=1 (CI, where a
    missing cluster is a bug)."""
    for var in ("RIVET_E2E_REQUIRE_CLUSTER", "RIVET_REQUIRE_SERVERS"):
        if os.environ.get(var) == "1":
            pytest.fail(f"{var}=1 but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    kubectl = _kubectl_path()
    external = os.environ.get("KUBECONFIG")
    if external:
        why = _reachable(kubectl, external)
        if why:
            _unavailable(f"KUBECONFIG={external} names no reachable cluster: {why}")
        return Cluster(
            kubeconfig=external,
            image=os.environ.get("RIVET_E2E_IMAGE", DEFAULT_IMAGE),
            host_address=os.environ.get("RIVET_E2E_HOST_ADDRESS") or None,
            kubectl_path=kubectl,
            pull_policy=os.environ.get("RIVET_E2E_PULL_POLICY", "IfNotPresent"),
        )

    if not TESTBED_JSON.is_file():
        _unavailable(
            "no cluster: the local test bed is not up (run `tests/cluster/cluster.sh up` then "
            "`tests/cluster/image.sh`, i.e. `make cluster-up image`), and KUBECONFIG is not set"
        )
    info = json.loads(TESTBED_JSON.read_text())
    why = _reachable(kubectl, info["kubeconfig"])
    if why:
        _unavailable(f"the local test bed is not running (`tests/cluster/cluster.sh up`): {why}")
    image = os.environ.get("RIVET_E2E_IMAGE", info.get("image", DEFAULT_IMAGE))
    if _local_image_present(info, image) is False:
        _unavailable(f"{image} is not in the test bed's containerd: run `tests/cluster/image.sh`")
    return Cluster(
        kubeconfig=info["kubeconfig"],
        image=image,
        host_address=os.environ.get("RIVET_E2E_HOST_ADDRESS") or info["host_address"],
        kubectl_path=kubectl,
        pull_policy=os.environ.get("RIVET_E2E_PULL_POLICY", "Never"),
        local=True,
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test; deleted afterwards (its contents dumped if the test failed)."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{base}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "rivet.test/e2e=true")
    cluster.wait_default_serviceaccount(name)
    try:
        yield name
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(f"\n===== namespace {name} after failure =====\n{cluster.describe(name)}")
        if os.environ.get("RIVET_E2E_KEEP_NAMESPACES") != "1":
            cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# ---------------------------------------------------------------------- servers on the host
def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class HostPostgres:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"


PG_BIN = Path(os.environ.get("RIVET_PG_BIN", "/usr/lib/postgresql/15/bin"))


@pytest.fixture(scope="session")
def host_postgres(cluster: Cluster) -> Iterator[HostPostgres]:
    """A throwaway PostgreSQL 15 cluster bound to cluster.host_address, reachable from pods."""
    if not cluster.host_address:
        pytest.skip("no host address that pods reach (set RIVET_E2E_HOST_ADDRESS)")
    if not (PG_BIN / "initdb").exists():
        _unavailable(f"no PostgreSQL server binaries in {PG_BIN} (apt-get install postgresql)")
    as_user: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="rivet-e2e-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres", "postgres")
    password = uuid.uuid4().hex
    (tmp / "pw").write_text(password)
    if as_user:
        shutil.chown(tmp / "pw", "postgres", "postgres")
    data = tmp / "data"
    port = free_port(cluster.host_address)
    subprocess.run(
        [*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "rivet", "--pwfile", str(tmp / "pw"),
         "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale", "C"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with open(data / "pg_hba.conf", "a") as f:
        f.write("host all all 0.0.0.0/0 scram-sha-256\n")
    opts = f"-c listen_addresses={cluster.host_address} -p {port} -k {tmp} -c fsync=off"
    subprocess.run(
        [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-o", opts, "-w", "start"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield HostPostgres(cluster.host_address, port, "rivet", password, "postgres")
    finally:
        subprocess.run(
            [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
