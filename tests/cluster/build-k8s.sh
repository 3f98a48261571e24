#!/usr/bin/env bash
# Build the pinned Kubernetes server binaries and kubectl from the Go module proxy, once per
# version, into ${CACHE_DIR}/k8s-${K8S_VERSION}/bin. A warm run only checks they are there.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"

COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

have_all() {
  local c
  for c in "${COMPONENTS[@]}"; do [ -x "${K8S_BIN}/${c}" ] || return 1; done
}

# One build at a time: CI starts this early in the background, and `cluster.sh up` calls it again;
# the second caller waits here and then finds the binaries cached.
mkdir -p "${CACHE_DIR}"
exec 9>"${CACHE_DIR}/.build-k8s.lock"
flock 9

if have_all && [ "${1:-}" != "--force" ]; then
  log "Kubernetes ${K8S_VERSION} binaries cached in ${K8S_BIN}"
  exit 0
fi

command -v go >/dev/null || die "go is needed (Go >= 1.24) to build Kubernetes ${K8S_VERSION}"
mkdir -p "${GOMODCACHE}" "${GOCACHE}"
WORK="${CACHE_DIR}/k8s-${K8S_VERSION}/src"
rm -rf "${WORK}"
mkdir -p "${WORK}"
cd "${WORK}"

start=$(date +%s)
log "fetching k8s.io/kubernetes ${K8S_VERSION} go.mod through the Go module proxy"
go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" > download.json
KMOD="$(python3 -c 'import json,sys;print(json.load(open("download.json"))["GoMod"])')"

# Every `k8s.io/x => ./staging/src/k8s.io/x` replace of the upstream go.mod becomes a pin to the
# published staging module of the same release.
{
  echo "module rivet.local/k8sbuild"
  echo
  echo "go $(awk '$1=="go"{print $2; exit}' "${KMOD}")"
  echo
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo
  awk -v v="${K8S_STAGING_VERSION}" '$2=="=>" && $3 ~ /^\.\/staging\// {print "replace " $1 " => " $1 " " v}' "${KMOD}"
} > go.mod
log "pinned $(grep -c "^replace" go.mod) staging modules to ${K8S_STAGING_VERSION}"
cat > tools.go <<'GO'
//go:build tools

package k8sbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO

log "resolving the module graph (go mod tidy)"
go mod tidy >/dev/null 2>tidy.log || { cat tidy.log >&2; die "go mod tidy failed"; }
t_mod=$(date +%s)

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
done

tmp="${K8S_BIN}.tmp"
rm -rf "${tmp}"; mkdir -p "${tmp}"
log "go build (${COMPONENTS[*]}), -p ${RIVET_GO_BUILD_P:-2}"
pkgs=()
for c in "${COMPONENTS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/${c}"); done
CGO_ENABLED=0 go build -p "${RIVET_GO_BUILD_P:-2}" -trimpath -ldflags "${ldflags}" -o "${tmp}/" "${pkgs[@]}"
rm -rf "${K8S_BIN}"; mv "${tmp}" "${K8S_BIN}"
end=$(date +%s)
log "built Kubernetes ${K8S_VERSION} in $((end - start))s (modules $((t_mod - start))s, compile $((end - t_mod))s)"
echo "$((end - start))" > "${CACHE_DIR}/k8s-${K8S_VERSION}/build-seconds"
"${K8S_BIN}/kubectl" version --client >&2
