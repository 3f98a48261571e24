# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings are used by the scripts that source this file
# Shared settings for the local single-node Kubernetes test bed (sourced, not run).
# Every path and version is overridable through the environment.

K8S_VERSION="${RIVET_K8S_VERSION:-v1.33.13}"
# The staging modules (k8s.io/api, ...) of Kubernetes v1.Y.Z are tagged v0.Y.Z.
K8S_STAGING_VERSION="v0.${K8S_VERSION#v1.}"

CACHE_DIR="${RIVET_TESTBED_CACHE:-/var/cache/rivet-testbed}"
STATE_DIR="${RIVET_TESTBED_STATE:-/var/lib/rivet-testbed}"
K8S_BIN="${CACHE_DIR}/k8s-${K8S_VERSION}/bin"

export GOMODCACHE="${CACHE_DIR}/go/mod"
export GOCACHE="${CACHE_DIR}/go/build"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Network layout (all of it created by this bed, on this machine only).
POD_CIDR="10.88.0.0/16"
BRIDGE_NAME="cni0"
# locally administered (02:...), fixed: see prepare_host in cluster.sh
BRIDGE_MAC="02:72:69:76:65:74"
BRIDGE_IP="10.88.0.1"
SERVICE_CIDR="10.96.0.0/16"
KUBERNETES_SVC_IP="10.96.0.1"
NODE_NAME="${RIVET_TESTBED_NODE:-rivet-node}"
APISERVER_PORT=6443
ETCD_CLIENT_PORT=2389   # not 2379, so a system etcd never collides
ETCD_PEER_PORT=2390

PAUSE_IMAGE="registry.k8s.io/pause:3.10-rivet"
BASE_IMAGE_TAG="rivet-base:bookworm"
PROJECT_IMAGE="rivet:dev"
PROJECT_IMAGE_FULL="docker.io/library/rivet:dev"

CONTAINERD_SOCK="${STATE_DIR}/run/containerd/containerd.sock"
DOCKER_SOCK="/var/run/docker.sock"
DOCKER_PIDFILE="/run/rivet-testbed-dockerd.pid"
ADMIN_KUBECONFIG="${STATE_DIR}/admin.kubeconfig"

log() { printf '[testbed %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root"; }

# apt_install PKG...: install the missing Debian packages only (idempotent).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ ! -f /var/lib/apt/lists/.rivet-updated ] || ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch /var/lib/apt/lists/.rivet-updated
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# proc_start PID: the process's start time (clock ticks since boot), to tell a reused PID apart.
proc_start() { awk '{sub(/^.*\) /, ""); print $20}' "/proc/$1/stat" 2>/dev/null; }

# record_start PIDFILE: remember the start time of the PID in the file (PIDFILE.start).
record_start() { [ -s "$1" ] && proc_start "$(cat "$1")" > "$1.start" || true; }

# pid_alive PIDFILE: true when the PID in the file runs and is still the process we started
# (same start time), so a PID reused after a reboot is never signalled.
pid_alive() {
  local f="$1" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ ! -s "$f.start" ] || [ "$(proc_start "$pid")" = "$(cat "$f.start")" ]
}

# stop_pidfile PIDFILE NAME: TERM then KILL the one process in the file.
stop_pidfile() {
  local f="$1" name="$2" pid i
  if pid_alive "$f"; then
    pid="$(cat "$f")"
    log "stopping ${name} (pid ${pid})"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  fi
  rm -f "$f" "$f.start"
}

# stop_pidfiles NAME=PIDFILE...: TERM all at once, wait up to STOP_TIMEOUT (10) s, KILL what is left.
stop_pidfiles() {
  local spec f name pids=() pid i alive
  for spec in "$@"; do
    name="${spec%%=*}"; f="${spec#*=}"
    if pid_alive "$f"; then
      pid="$(cat "$f")"; pids+=("$pid")
      log "stopping ${name} (pid ${pid})"
      kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$f" "$f.start"
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  for i in $(seq 1 $(( ${STOP_TIMEOUT:-10} * 10 ))); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  sleep 0.2
}

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what="$1" timeout="$2" start
  shift 2
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
      log "timed out after ${timeout}s waiting for ${what}"
      return 1
    fi
    sleep 0.5
  done
}

# ensure_dockerd: start a Docker engine (our own, PID file) unless one answers already.
ensure_dockerd() {
  apt_install docker.io
  if docker -H "unix://${DOCKER_SOCK}" version >/dev/null 2>&1; then return 0; fi
  mkdir -p "${STATE_DIR}/logs"
  log "starting dockerd (log ${STATE_DIR}/logs/dockerd.log)"
  # Debian's dockerd uses its own bundled containerd (started as a child under /var/run/docker).
  setsid /usr/sbin/dockerd --host "unix://${DOCKER_SOCK}" --pidfile "${DOCKER_PIDFILE}" \
    >"${STATE_DIR}/logs/dockerd.log" 2>&1 < /dev/null &
  wait_for dockerd 60 docker -H "unix://${DOCKER_SOCK}" version || {
    tail -n 30 "${STATE_DIR}/logs/dockerd.log" >&2; die "dockerd did not start"; }
  record_start "${DOCKER_PIDFILE}"
}
