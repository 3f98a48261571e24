#!/usr/bin/env bash
# A single-node Kubernetes cluster from upstream parts, for the e2e tests (what `kind create
# cluster` gives on a laptop; kind cannot pull its node image here).
#
#   tests/cluster/cluster.sh up              build/cached binaries, PKI, start everything, wait Ready
#   tests/cluster/cluster.sh down [--wipe]   stop exactly what `up` (and image.sh: dockerd) started,
#                                            by PID file; --wipe also removes the state (etcd data,
#                                            PKI, pods, imported images, the cni0 bridge). The caches
#                                            (binaries, Go caches, rootfs tarball, docker images) stay.
#   tests/cluster/cluster.sh status          what runs, node and kubeconfig
#   tests/cluster/cluster.sh kubectl ARGS    the pinned kubectl against the bed
#
# Components: etcd (Debian), containerd + runc + CNI bridge plugins (Debian), kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl built from the pinned
# release (build-k8s.sh). All processes, logs, PID files and state live under ${STATE_DIR}.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "${HERE}/lib.sh"

PKI="${STATE_DIR}/pki"
CONF="${STATE_DIR}/conf"
LOGS="${STATE_DIR}/logs"
PIDS="${STATE_DIR}/pids"
CNI_CONF_DIR="${STATE_DIR}/cni/net.d"
CNI_BIN_DIR="/usr/lib/cni"
ORDER=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

KUBECTL() { "${K8S_BIN}/kubectl" --kubeconfig "${ADMIN_KUBECONFIG}" "$@"; }

# ---------------------------------------------------------------- host preparation
install_packages() {
  apt_install etcd-server containerd runc containernetworking-plugins iptables conntrack socat \
    openssl curl iproute2 util-linux kmod procps gcc libc6-dev ca-certificates python3
}

prepare_host() {
  modprobe br_netfilter 2>/dev/null || true
  modprobe overlay 2>/dev/null || true
  sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
  # The bridge the CNI plugin attaches pods to, created up front so that the API server can
  # advertise (and the host's test servers bind to) an address pods reach from the start.
  if ! ip link show "${BRIDGE_NAME}" >/dev/null 2>&1; then
    ip link add "${BRIDGE_NAME}" type bridge
  fi
  case "$(ip -4 addr show dev "${BRIDGE_NAME}")" in
    *"inet ${BRIDGE_IP}/"*) ;;
    *) ip addr add "${BRIDGE_IP}/16" dev "${BRIDGE_NAME}" ;;
  esac
  # Pin the bridge's MAC. Left unset, a Linux bridge takes the lowest MAC among its ports, so it
  # changes as pods come and go; pods keep the old gateway MAC in their ARP cache and their packets to
  # the host (10.88.0.1) vanish until it expires: TCP connections to host-side servers stall for
  # minutes under pod churn. A set address (addr_assign_type 3) never follows the ports.
  if [ "$(cat "/sys/class/net/${BRIDGE_NAME}/addr_assign_type")" != 3 ] ||
     [ "$(cat "/sys/class/net/${BRIDGE_NAME}/address")" != "${BRIDGE_MAC}" ]; then
    ip link set "${BRIDGE_NAME}" address "${BRIDGE_MAC}"
  fi
  ip link set "${BRIDGE_NAME}" up
  # Docker's FORWARD policy is DROP; let pod traffic through (rules are tagged for removal).
  iptables -C FORWARD -s "${POD_CIDR}" -j ACCEPT -m comment --comment rivet-testbed 2>/dev/null ||
    iptables -I FORWARD -s "${POD_CIDR}" -j ACCEPT -m comment --comment rivet-testbed
  iptables -C FORWARD -d "${POD_CIDR}" -j ACCEPT -m comment --comment rivet-testbed 2>/dev/null ||
    iptables -I FORWARD -d "${POD_CIDR}" -j ACCEPT -m comment --comment rivet-testbed
}

# ---------------------------------------------------------------- PKI and kubeconfigs
# cert NAME CN O "SAN" : a key and a CA-signed certificate (client+server usage).
cert() {
  local name="$1" cn="$2" org="$3" san="$4" subj
  [ -s "${PKI}/${name}.crt" ] && return 0
  subj="/CN=${cn}"
  [ -n "${org}" ] && subj="/O=${org}${subj}"
  openssl genrsa -out "${PKI}/${name}.key" 2048 2>/dev/null
  openssl req -new -key "${PKI}/${name}.key" -subj "${subj}" -out "${PKI}/${name}.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "${san}" ] && echo "subjectAltName=${san}"
  } > "${PKI}/${name}.ext"
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "${PKI}/${name}.ext" -out "${PKI}/${name}.crt" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

kubeconfig() {
  local name="$1" user="$2" out="${3:-${CONF}/$1.kubeconfig}"
  [ -s "${out}" ] && return 0
  cat > "${out}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: rivet-testbed
  cluster:
    server: https://127.0.0.1:${APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 < "${PKI}/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 < "${PKI}/${name}.crt")
    client-key-data: $(base64 -w0 < "${PKI}/${name}.key")
contexts:
- name: rivet-testbed
  context: {cluster: rivet-testbed, user: ${user}, namespace: default}
current-context: rivet-testbed
EOF
  chmod 600 "${out}"
}

make_pki() {
  mkdir -p "${PKI}" "${CONF}"
  chmod 700 "${PKI}"
  if [ ! -s "${PKI}/ca.crt" ]; then
    log "generating PKI in ${PKI}"
    openssl genrsa -out "${PKI}/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "${PKI}/ca.key" -subj "/CN=rivet-testbed-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "${PKI}/ca.crt" 2>/dev/null
  fi
  [ -s "${PKI}/sa.key" ] || {
    openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
    openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
  }
  cert apiserver kube-apiserver "" \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:${NODE_NAME},IP:127.0.0.1,IP:${KUBERNETES_SVC_IP},IP:${BRIDGE_IP}"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
  cert admin admin system:masters ""
  cert controller-manager system:kube-controller-manager "" ""
  cert scheduler system:kube-scheduler "" ""
  cert kube-proxy system:kube-proxy "" ""
  cert kubelet "system:node:${NODE_NAME}" system:nodes "DNS:${NODE_NAME},DNS:localhost,IP:127.0.0.1,IP:${BRIDGE_IP}"
  kubeconfig admin admin "${ADMIN_KUBECONFIG}"
  kubeconfig controller-manager system:kube-controller-manager
  kubeconfig scheduler system:kube-scheduler
  kubeconfig kube-proxy system:kube-proxy
  kubeconfig kubelet "system:node:${NODE_NAME}"
}

# ---------------------------------------------------------------- configuration files
# write_if_changed PATH < content: leave an identical file alone (kube-proxy exits when its
# config file changes, so a second `up` must not touch it).
write_if_changed() {
  local tmp="$1.new"
  cat > "${tmp}"
  if cmp -s "${tmp}" "$1"; then rm -f "${tmp}"; else mv "${tmp}" "$1"; fi
}

write_configs() {
  mkdir -p "${CNI_CONF_DIR}" "${STATE_DIR}/cni/ipam" "${STATE_DIR}/containerd" "${STATE_DIR}/run/containerd"
  write_if_changed "${CONF}/containerd.toml" <<EOF
version = 2
root = "${STATE_DIR}/containerd/root"
state = "${STATE_DIR}/run/containerd/state"
oom_score = 0

[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${STATE_DIR}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  enable_selinux = false
  # This machine withholds CAP_SYS_RESOURCE even from root, so runc cannot lower a process's
  # oom_score_adj (the sandbox asks for -998: "nsexec: failed to update /proc/self/oom_score_adj:
  # Permission denied"). Restricting clamps requests to containerd's own score instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${CNI_CONF_DIR}"
    max_conf_num = 1
EOF

  write_if_changed "${CNI_CONF_DIR}/10-rivet-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "rivet-testbed",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE_NAME}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${STATE_DIR}/cni/ipam",
        "ranges": [[{"subnet": "${POD_CIDR}", "gateway": "${BRIDGE_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  write_if_changed "${CONF}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${BRIDGE_IP}
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization:
  mode: Webhook
tlsCertFile: ${PKI}/kubelet.crt
tlsPrivateKeyFile: ${PKI}/kubelet.key
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
maxPods: 110
EOF

  write_if_changed "${CONF}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${CONF}/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: ${POD_CIDR}
hostnameOverride: ${NODE_NAME}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# ---------------------------------------------------------------- processes
# start NAME CMD...: run in the background (own session), log and PID file; no-op if running.
start() {
  local name="$1"; shift
  if pid_alive "${PIDS}/${name}.pid"; then
    log "${name} already runs (pid $(cat "${PIDS}/${name}.pid"))"
    return 0
  fi
  log "starting ${name} (log ${LOGS}/${name}.log)"
  printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$*" >> "${LOGS}/${name}.log"
  setsid "$@" >> "${LOGS}/${name}.log" 2>&1 < /dev/null &
  echo $! > "${PIDS}/${name}.pid"
  record_start "${PIDS}/${name}.pid"
}

check_alive() {
  local name="$1"
  pid_alive "${PIDS}/${name}.pid" && return 0
  log "${name} exited; last lines of ${LOGS}/${name}.log:"
  tail -n 25 "${LOGS}/${name}.log" >&2
  return 1
}

healthy() { curl -fsS --max-time 2 "$@"; }

start_all() {
  mkdir -p "${LOGS}" "${PIDS}" "${STATE_DIR}/etcd" "${STATE_DIR}/kubelet"

  start etcd /usr/bin/etcd --name rivet-testbed --data-dir "${STATE_DIR}/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "rivet-testbed=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --listen-metrics-urls "" --quota-backend-bytes 4294967296 --snapshot-count 10000
  start containerd /usr/bin/containerd --config "${CONF}/containerd.toml"

  wait_for etcd 60 healthy "http://127.0.0.1:${ETCD_CLIENT_PORT}/health" || { check_alive etcd; die "etcd is not healthy"; }

  start kube-apiserver "${K8S_BIN}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_CLIENT_PORT}" \
    --bind-address 0.0.0.0 --secure-port "${APISERVER_PORT}" --advertise-address "${BRIDGE_IP}" \
    --tls-cert-file "${PKI}/apiserver.crt" --tls-private-key-file "${PKI}/apiserver.key" \
    --client-ca-file "${PKI}/ca.crt" \
    --kubelet-client-certificate "${PKI}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${PKI}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "${PKI}/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-key-file "${PKI}/sa.pub" \
    --service-account-signing-key-file "${PKI}/sa.key" \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --api-audiences "https://kubernetes.default.svc.cluster.local" \
    --service-cluster-ip-range "${SERVICE_CIDR}" \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --enable-admission-plugins NodeRestriction \
    --profiling=false --v 1

  wait_for containerd 30 test -S "${CONTAINERD_SOCK}" || { check_alive containerd; die "containerd did not start"; }
  import_pause_image

  wait_for kube-apiserver 120 healthy --cacert "${PKI}/ca.crt" "https://127.0.0.1:${APISERVER_PORT}/readyz" ||
    { check_alive kube-apiserver; tail -n 40 "${LOGS}/kube-apiserver.log" >&2; die "kube-apiserver is not ready"; }

  start kube-controller-manager "${K8S_BIN}/kube-controller-manager" \
    --kubeconfig "${CONF}/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${CONF}/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${CONF}/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "${PKI}/sa.key" --root-ca-file "${PKI}/ca.crt" \
    --cluster-signing-cert-file "${PKI}/ca.crt" --cluster-signing-key-file "${PKI}/ca.key" \
    --service-cluster-ip-range "${SERVICE_CIDR}" --allocate-node-cidrs=false \
    --controllers '*,bootstrapsigner,tokencleaner' --profiling=false --v 1
  start kube-scheduler "${K8S_BIN}/kube-scheduler" \
    --kubeconfig "${CONF}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${CONF}/scheduler.kubeconfig" \
    --authorization-kubeconfig "${CONF}/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v 1
  start kubelet "${K8S_BIN}/kubelet" \
    --config "${CONF}/kubelet.yaml" --kubeconfig "${CONF}/kubelet.kubeconfig" \
    --hostname-override "${NODE_NAME}" --node-ip "${BRIDGE_IP}" \
    --root-dir "${STATE_DIR}/kubelet" --v 1
  start kube-proxy "${K8S_BIN}/kube-proxy" --config "${CONF}/kube-proxy.yaml" --v 1
}

import_pause_image() {
  local cache="${CACHE_DIR}/images" src
  mkdir -p "${cache}"
  if [ ! -s "${cache}/pause-${K8S_VERSION}.tar" ]; then
    src="${GOMODCACHE}/k8s.io/kubernetes@${K8S_VERSION}/build/pause/linux/pause.c"
    [ -f "${src}" ] || (cd "${CACHE_DIR}/k8s-${K8S_VERSION}/src" && go mod download "k8s.io/kubernetes@${K8S_VERSION}")
    log "compiling pause from ${src}"
    gcc -Os -Wall -Werror -static -DVERSION="${K8S_VERSION}-rivet" -o "${cache}/pause" "${src}"
    strip "${cache}/pause"
    python3 "${HERE}/pause-image.py" "${cache}/pause" "${PAUSE_IMAGE}" "${cache}/pause-${K8S_VERSION}.tar.tmp" >/dev/null
    mv "${cache}/pause-${K8S_VERSION}.tar.tmp" "${cache}/pause-${K8S_VERSION}.tar"
  fi
  if ! ctr -a "${CONTAINERD_SOCK}" -n k8s.io images ls -q | grep -x "${PAUSE_IMAGE}" >/dev/null; then
    log "importing ${PAUSE_IMAGE} into containerd"
    ctr -a "${CONTAINERD_SOCK}" -n k8s.io images import "${cache}/pause-${K8S_VERSION}.tar" >/dev/null
  fi
}

node_ready() {
  [ "$(KUBECTL get node "${NODE_NAME}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

wait_ready() {
  local c
  wait_for "node ${NODE_NAME} Ready" 180 node_ready || {
    for c in containerd kubelet; do check_alive "${c}" || true; done
    tail -n 30 "${LOGS}/kubelet.log" >&2
    KUBECTL describe node "${NODE_NAME}" >&2 || true
    die "node not Ready"; }
  wait_for "ServiceAccount default/default" 120 KUBECTL -n default get serviceaccount default ||
    { check_alive kube-controller-manager || true; die "no default ServiceAccount"; }
  wait_for "ConfigMap default/kube-root-ca.crt" 60 KUBECTL -n default get configmap kube-root-ca.crt ||
    die "no kube-root-ca.crt"
  wait_for "kubernetes Service endpoints" 60 KUBECTL -n default get endpointslices \
    -l kubernetes.io/service-name=kubernetes -o name || die "no endpoints for the kubernetes Service"
}

# What the e2e fixtures (tests/e2e/conftest.py) read to find the bed.
write_testbed_json() {
  cat > "${STATE_DIR}/testbed.json" <<EOF
{
  "kubeconfig": "${ADMIN_KUBECONFIG}",
  "kubectl": "${K8S_BIN}/kubectl",
  "kubernetes_version": "${K8S_VERSION}",
  "image": "${PROJECT_IMAGE_FULL}",
  "host_address": "${BRIDGE_IP}",
  "pod_cidr": "${POD_CIDR}",
  "containerd_socket": "${CONTAINERD_SOCK}",
  "node": "${NODE_NAME}"
}
EOF
}

cmd_up() {
  need_root
  local t0; t0=$(date +%s)
  install_packages
  "${HERE}/build-k8s.sh"
  prepare_host
  make_pki
  write_configs
  start_all
  wait_ready
  for c in "${ORDER[@]}"; do check_alive "${c}" || die "${c} died"; done
  write_testbed_json
  log "cluster up in $(( $(date +%s) - t0 ))s; admin kubeconfig: ${ADMIN_KUBECONFIG}"
  echo "${ADMIN_KUBECONFIG}"
}

# ---------------------------------------------------------------- teardown
remove_pod_containers() {
  # Pods' containers and sandboxes outlive containerd (they run under their shims). Kill and
  # delete every task and container of the CRI namespace while containerd still answers.
  [ -S "${CONTAINERD_SOCK}" ] && pid_alive "${PIDS}/containerd.pid" || return 0
  local ctr=(ctr -a "${CONTAINERD_SOCK}" -n k8s.io) id
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill -s SIGKILL "${id}" >/dev/null 2>&1 || true
  done
  sleep 1
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete -f "${id}" >/dev/null 2>&1 || true
  done
  for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    "${ctr[@]}" containers delete "${id}" >/dev/null 2>&1 || true
  done
}

# The pods' sandboxes were killed without a CNI teardown: drop their masquerade rules (tagged
# with our network name) and their host-local IP leases.
cleanup_cni_leftovers() {
  local rule chain
  iptables -t nat -S POSTROUTING 2>/dev/null | grep -F 'name: \"rivet-testbed\"' | while read -r rule; do
    chain="${rule##* -j }"
    eval "iptables -t nat ${rule/#-A /-D }" 2>/dev/null || true
    case "${chain}" in CNI-*) iptables -t nat -F "${chain}" 2>/dev/null && iptables -t nat -X "${chain}" 2>/dev/null ;; esac
  done || true
  find "${STATE_DIR}/cni/ipam" -type f -name '10.*' -delete 2>/dev/null || true
}

cmd_down() {
  need_root
  local wipe=0 i
  [ "${1:-}" = "--wipe" ] && wipe=1
  stop_pidfiles kube-proxy="${PIDS}/kube-proxy.pid" kubelet="${PIDS}/kubelet.pid" \
    kube-scheduler="${PIDS}/kube-scheduler.pid" kube-controller-manager="${PIDS}/kube-controller-manager.pid"
  remove_pod_containers
  stop_pidfiles kube-apiserver="${PIDS}/kube-apiserver.pid" containerd="${PIDS}/containerd.pid"
  stop_pidfiles etcd="${PIDS}/etcd.pid"
  # The Docker engine, only if image.sh/base-image.sh started it (its PID file is ours).
  STOP_TIMEOUT=60 stop_pidfiles dockerd="${DOCKER_PIDFILE}"
  # Network namespaces the CRI made for pods (containerd names them cni-<uuid>).
  for i in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
    ip netns delete "${i}" 2>/dev/null || true
  done
  cleanup_cni_leftovers
  # Kubelet's volume mounts (service account tokens) under our own root dir.
  { grep -o " ${STATE_DIR}/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "${m}" 2>/dev/null || true; done
  if [ "${wipe}" = 1 ]; then
    log "wiping ${STATE_DIR} (cached binaries and images in ${CACHE_DIR} are kept)"
    [ -x "${K8S_BIN}/kube-proxy" ] && "${K8S_BIN}/kube-proxy" --cleanup >/dev/null 2>&1 || true
    while iptables -D FORWARD -s "${POD_CIDR}" -j ACCEPT -m comment --comment rivet-testbed 2>/dev/null; do :; done
    while iptables -D FORWARD -d "${POD_CIDR}" -j ACCEPT -m comment --comment rivet-testbed 2>/dev/null; do :; done
    ip link delete "${BRIDGE_NAME}" 2>/dev/null || true
    rm -rf --one-file-system "${STATE_DIR}"
  fi
  log "down"
}

cmd_status() {
  local name rc=0
  for name in "${ORDER[@]}"; do
    if pid_alive "${PIDS}/${name}.pid"; then
      printf '%-24s running  pid %s\n' "${name}" "$(cat "${PIDS}/${name}.pid")"
    else
      printf '%-24s stopped\n' "${name}"; rc=1
    fi
  done
  if pid_alive "${DOCKER_PIDFILE}"; then
    printf '%-24s running  pid %s (image builds)\n' dockerd "$(cat "${DOCKER_PIDFILE}")"
  fi
  echo "kubernetes: ${K8S_VERSION} (${K8S_BIN})"
  echo "kubeconfig: ${ADMIN_KUBECONFIG}"
  echo "host address for pods: ${BRIDGE_IP}"
  if [ -s "${ADMIN_KUBECONFIG}" ] && pid_alive "${PIDS}/kube-apiserver.pid"; then
    KUBECTL get nodes -o wide 2>&1 || rc=1
  fi
  return "${rc}"
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  kubectl) shift; KUBECTL "$@" ;;
  *) echo "usage: $0 up | down [--wipe] | status | kubectl ARGS..." >&2; exit 2 ;;
esac
