#!/usr/bin/env bash
# Build the local base image (Debian bookworm minbase + python3) with debootstrap, cache the root
# filesystem tarball by a version key, and `docker import` it as ${BASE_IMAGE_TAG}.
# Stands in for python:3.11-slim-bookworm where no container registry is reachable.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"
need_root

MIRROR="${RIVET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
INCLUDE="python3,python3-venv,python3-pip,ca-certificates"
# Bump BASE_KEY to rebuild the tarball (e.g. for newer security updates).
BASE_KEY="${SUITE}-minbase-py3-v1"
TARBALL="${CACHE_DIR}/images/rootfs-${BASE_KEY}.tar"

apt_install debootstrap
ensure_dockerd

if [ ! -s "${TARBALL}" ]; then
  start=$(date +%s)
  root="${CACHE_DIR}/images/rootfs-${BASE_KEY}.d"
  rm -rf "${root}"; mkdir -p "${root}"
  log "debootstrap ${SUITE} (minbase + ${INCLUDE}) from ${MIRROR}"
  debootstrap --variant=minbase --include="${INCLUDE}" "${SUITE}" "${root}" "${MIRROR}" \
    > "${CACHE_DIR}/images/debootstrap-${BASE_KEY}.log" 2>&1 || {
      tail -n 30 "${CACHE_DIR}/images/debootstrap-${BASE_KEY}.log" >&2; die "debootstrap failed"; }
  # Slim it the way the official slim images are: no apt lists, caches, docs.
  rm -rf "${root}"/var/lib/apt/lists/* "${root}"/var/cache/apt/*.bin "${root}"/var/cache/apt/archives/*.deb \
         "${root}"/usr/share/doc/* "${root}"/usr/share/man/* "${root}"/usr/share/info/*
  # python3.11 refuses `pip install` into the system interpreter (PEP 668); venvs are fine.
  tar -C "${root}" --numeric-owner -cf "${TARBALL}.tmp" .
  mv "${TARBALL}.tmp" "${TARBALL}"
  rm -rf "${root}"
  log "debootstrap + tarball took $(( $(date +%s) - start ))s"
  echo "$(( $(date +%s) - start ))" > "${CACHE_DIR}/images/debootstrap-${BASE_KEY}.seconds"
fi

want="$(sha256sum "${TARBALL}" | cut -c1-16)"
ROOTFS_TAG="rivet-base:rootfs-${want}"
if ! docker image inspect "${ROOTFS_TAG}" >/dev/null 2>&1; then
  log "docker import ${TARBALL} as ${ROOTFS_TAG}"
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    -c 'CMD ["python3"]' \
    "${TARBALL}" "${ROOTFS_TAG}" >/dev/null
fi

# This machine reaches the package registries through a TLS-inspecting egress proxy whose CA the
# host trusts (/usr/local/share/ca-certificates). Give the image the same trust, so that pip in
# `docker build` works; the layer is tiny and rebuilt only when the host's CAs change.
ctx="$(mktemp -d)"
trap 'rm -rf "${ctx}"' EXIT
mkdir -p "${ctx}/ca"
cp /usr/local/share/ca-certificates/*.crt "${ctx}/ca/" 2>/dev/null || true
cat > "${ctx}/Dockerfile" <<DOCKERFILE
FROM ${ROOTFS_TAG}
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null 2>&1 || true
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "${BASE_IMAGE_TAG}" "${ctx}" >/dev/null
log "base image ${BASE_IMAGE_TAG} ready"
