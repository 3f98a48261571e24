#!/usr/bin/env bash
# Build the project image (top-level Dockerfile) on the locally made base image and load it into
# the test bed's containerd, where pods use it as docker.io/library/rivet:dev
# (imagePullPolicy: Never or IfNotPresent).
#
#   tests/cluster/image.sh            build + import (import skipped when the bed is not up)
#   tests/cluster/image.sh --build    build only
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"
need_root

mkdir -p "${STATE_DIR}/logs"
"${HERE}/base-image.sh"

start=$(date +%s)
log "docker build ${PROJECT_IMAGE} (BASE_IMAGE=${BASE_IMAGE_TAG})"
# The legacy builder is enough (no BuildKit-only syntax) and needs no buildx plugin.
DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=${BASE_IMAGE_TAG}" -t "${PROJECT_IMAGE}" \
  -f "${ROOT}/Dockerfile" "${ROOT}" > "${STATE_DIR}/logs/docker-build.log" 2>&1 || {
    tail -n 40 "${STATE_DIR}/logs/docker-build.log" >&2; die "docker build failed (log ${STATE_DIR}/logs/docker-build.log)"; }
log "docker build took $(( $(date +%s) - start ))s"
# Dangling layers from earlier builds of the tag.
docker image prune -f >/dev/null 2>&1 || true

[ "${1:-}" = "--build" ] && exit 0

if ! pid_alive "${STATE_DIR}/pids/containerd.pid" || [ ! -S "${CONTAINERD_SOCK}" ]; then
  log "the test bed is not up (tests/cluster/cluster.sh up); image built, not imported"
  exit 0
fi
want="$(docker image inspect -f '{{.Id}}' "${PROJECT_IMAGE}")"
# ctr lists manifest digests, not docker's image ID: remember which ID was imported last.
stamp="${STATE_DIR}/images/${PROJECT_IMAGE//[:\/]/_}.id"
mkdir -p "${STATE_DIR}/images"
if ctr -a "${CONTAINERD_SOCK}" -n k8s.io images ls -q | grep -x "${PROJECT_IMAGE_FULL}" >/dev/null &&
   [ -s "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
  log "${PROJECT_IMAGE_FULL} already in the cluster (${want})"
  exit 0
fi
start=$(date +%s)
log "importing ${PROJECT_IMAGE_FULL} into the cluster's containerd"
docker save "${PROJECT_IMAGE}" | ctr -a "${CONTAINERD_SOCK}" -n k8s.io images import - >/dev/null
echo "${want}" > "${stamp}"
log "import took $(( $(date +%s) - start ))s"
ctr -a "${CONTAINERD_SOCK}" -n k8s.io images ls -q | grep -x "${PROJECT_IMAGE_FULL}"
