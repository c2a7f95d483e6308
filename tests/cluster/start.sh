#!/usr/bin/env bash
# Starts a throwaway local control plane on 127.0.0.1 in a fresh temp dir:
#   etcd, kube-apiserver (RBAC on, --endpoint-reconciler-type=none), kube-controller-manager,
#   kube-scheduler, kwok (fake nodes; pod IPs from a loopback CIDR), and — when available —
#   metrics-server (the metrics API, behind the aggregation layer; kwok emulates the kubelet
#   metrics it scrapes), Prometheus (kubernetes_sd_configs against this apiserver) and the pod
#   runner (a real demo-app process on every Running pod's IP).
# Prints the path of an env file (KUBECONFIG, URLs, ...) on stdout; `source` it or point
# TOLLGATE_TEST_ENV at it. Stop with: tests/cluster/stop.sh <that env file or dir>.
#
# Environment knobs:
#   TOLLGATE_CACHE        cache folder of build.sh (default ~/.cache/tollgate)
#   TOLLGATE_CLUSTER_DIR  use this (empty or missing) dir instead of a mktemp one
#   TOLLGATE_POD_CIDR     loopback pod CIDR (default 127.0.10.0/24)
#   TOLLGATE_SERVICE_CIDR Service ClusterIP range (default 127.0.96.0/20, loopback too)
#   TOLLGATE_NODES        number of fake nodes (default 3)
#   TOLLGATE_PROMETHEUS   0 to skip Prometheus (default 1)
#   TOLLGATE_SCRAPE_INTERVAL  Prometheus' scrape interval in whole seconds (default 2; the scale bench
#                         uses 10: thousands of pod targets every 2 s would be Prometheus' whole job)
#   TOLLGATE_METRICS_SERVER 0 to skip metrics-server (default 1 when build.sh built it)
#   TOLLGATE_POD_RUNNER   path of the pod-runner binary (default: none = not started)
#   TOLLGATE_POD_RUNNER_SELECTOR  label selector of the pods that get a process (default: all)
#   TOLLGATE_POD_RUNNER_INLINE  1: the pod runner serves every pod from its own process
#                         (`--inline`, one listener per pod IP; no DEMO_APP_BIN needed): the scale bench
#   TOLLGATE_POD_RUNNER_GRACE_MS  how long a gone pod's server keeps answering (default 1500; the scale
#                         bench uses 0: kwok hands a freed IP to the next pod at once, and under load a
#                         new canary pod's IP still answered with the deleted stable pod's version)
#   TOLLGATE_NODE_MAX_PODS pods per fake node (default 250)
#   TOLLGATE_KCM_QPS      kube-controller-manager's --kube-api-qps (burst twice that; default its own, 20)
#   TOLLGATE_AUDIT_USERS  comma-separated users whose requests the apiserver audits (level Metadata)
#                         to <dir>/logs/audit.log (default: no audit log), for per-client request counts
#   DEMO_APP_BIN          path of the demo-app binary the pod runner starts
#   LOAD_GEN_BIN          path of the load-gen binary (only recorded in the env file)
#   PACT_BROKER_URL       recorded in the env file when set (the broker is started elsewhere)
#   TOLLGATE_START_TIMEOUT seconds to wait for Ready (default 120)
#   TOLLGATE_MAX_LIFETIME  a watchdog runs stop.sh after this many seconds (default 10800 = 3 h),
#                          so a forgotten cluster does not outlive its session
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
t0=$(date +%s.%N)
cache=${TOLLGATE_CACHE:-$HOME/.cache/tollgate}
bin=$cache/bin/$KUBERNETES_VERSION
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
  [ -x "$bin/$b" ] || { echo "start.sh: $bin/$b missing: run tests/cluster/build.sh first" >&2; exit 1; }
done
pod_cidr=${TOLLGATE_POD_CIDR:-127.0.10.0/24}
# Service ClusterIPs are loopback too, so even a stray request to one stays on this machine.
service_cidr=${TOLLGATE_SERVICE_CIDR:-127.0.96.0/20}
nodes=${TOLLGATE_NODES:-3}
# The metrics API only when build.sh built metrics-server (a cache from before it still starts).
metrics_server=0
if [ "${TOLLGATE_METRICS_SERVER:-1}" != 0 ] && [ -x "$bin/metrics-server" ] && [ -s "$bin/kwok-metrics.yaml" ]; then
  metrics_server=1
fi
timeout=${TOLLGATE_START_TIMEOUT:-120}
max_pods=${TOLLGATE_NODE_MAX_PODS:-250}
kcm_qps=()
[ -z "${TOLLGATE_KCM_QPS:-}" ] || kcm_qps=("--kube-api-qps=$TOLLGATE_KCM_QPS" "--kube-api-burst=$(( TOLLGATE_KCM_QPS * 2 ))")

if [ -n "${TOLLGATE_CLUSTER_DIR:-}" ]; then
  dir=$TOLLGATE_CLUSTER_DIR; mkdir -p "$dir"
else
  dir=$(mktemp -d /tmp/tollgate-cluster.XXXXXX)
fi
mkdir -p "$dir"/{pki,logs,etcd,prometheus}
: > "$dir/pids"
# An audit policy that records only the named users' requests (one line per request stage).
audit=()
if [ -n "${TOLLGATE_AUDIT_USERS:-}" ]; then
  {
    echo "apiVersion: audit.k8s.io/v1"
    echo "kind: Policy"
    echo "omitStages: [RequestReceived]"
    echo "rules:"
    echo "- level: Metadata"
    echo "  users: [$(echo "$TOLLGATE_AUDIT_USERS" | sed 's/[^,][^,]*/"&"/g')]"
    echo "- level: None"
  } > "$dir/audit-policy.yaml"
  audit=("--audit-policy-file=$dir/audit-policy.yaml" "--audit-log-path=$dir/logs/audit.log"
    "--audit-log-format=json" "--audit-log-mode=batch" "--audit-log-batch-max-wait=1s")
fi
log() { echo "[start.sh $(date -u +%H:%M:%S)] $*" >&2; }
fail() {
  log "FAILED: $*"
  for f in "$dir"/logs/*.log; do
    case $f in */openssl.log) continue ;; esac
    echo "--- tail $f" >&2; tail -n 15 "$f" >&2
  done
  bash "$here/stop.sh" "$dir" >&2 || true
  exit 1
}
# Each process is recorded as "pid name"; stop.sh kills only those.
spawn() {
  local name=$1; shift
  "$@" >"$dir/logs/$name.log" 2>&1 &
  echo "$! $name" >> "$dir/pids"
}
freeport() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Watchdog: bounded lifetime even when nobody calls stop.sh.
# Recorded as "stop.sh" (its command line names it) so stop.sh ends it too; it kills its sleep.
spawn stop.sh bash -c "trap 'kill \$s 2>/dev/null; exit 0' TERM; sleep ${TOLLGATE_MAX_LIFETIME:-10800} & s=\$!; wait \$s; exec bash '$here/stop.sh' '$dir'"

# --- certificates -------------------------------------------------------------------------------
pki=$dir/pki
ossl() { openssl "$@" 2>>"$dir/logs/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tollgate-test-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt"
cat > "$pki/server.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > "$pki/client.ext"
# The aggregator verifies an APIService backend's certificate as <service>.<namespace>.svc.
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:metrics-server.kube-system.svc,IP:127.0.0.1\n' > "$pki/metrics-server-serving.ext"
cert() { # name subject extfile [key: default rsa:2048]
  ossl req -newkey "${4:-rsa:2048}" ${4:+-pkeyopt ec_paramgen_curve:P-256} -nodes -subj "$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr"
  ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$3" -out "$pki/$1.crt"
}
cert apiserver "/CN=kube-apiserver" "$pki/server.ext"
cert admin "/O=system:masters/CN=tollgate-admin" "$pki/client.ext"
cert controller-manager "/CN=system:kube-controller-manager" "$pki/client.ext"
cert scheduler "/CN=system:kube-scheduler" "$pki/client.ext"
cert kwok "/O=system:masters/CN=kwok" "$pki/client.ext"
cert prometheus "/CN=tollgate-prometheus" "$pki/client.ext"
cert pod-runner "/CN=tollgate-pod-runner" "$pki/client.ext"
# The aggregation layer: the apiserver proxies to APIService backends (metrics-server) as
# front-proxy-client, passing the caller in X-Remote-* headers the backend trusts from that name.
# EC keys for these: generated in milliseconds where an RSA key takes up to a second on a busy machine.
cert front-proxy-client "/CN=front-proxy-client" "$pki/client.ext" ec
if [ "$metrics_server" = 1 ]; then
  cert metrics-server "/O=system:masters/CN=metrics-server" "$pki/client.ext" ec
  cert metrics-server-serving "/CN=metrics-server" "$pki/metrics-server-serving.ext" ec
fi
ossl genrsa -out "$pki/sa.key" 2048
ossl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# --- ports, kubeconfigs ---------------------------------------------------------------------------
etcd_port=$(freeport); etcd_peer_port=$(freeport); api_port=$(freeport)
kcm_port=$(freeport); sched_port=$(freeport); kwok_port=$(freeport); prom_port=$(freeport)
runner_port=$(freeport); ms_port=$(freeport)
server=https://127.0.0.1:$api_port
kubeconfig() { # user -> file
  cat > "$dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tollgate-test
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $pki/$1.crt
    client-key: $pki/$1.key
contexts:
- name: tollgate-test
  context: {cluster: tollgate-test, user: $1, namespace: default}
current-context: tollgate-test
EOF
}
for u in admin controller-manager scheduler kwok prometheus pod-runner metrics-server; do kubeconfig $u; done
export KUBECONFIG=$dir/admin.kubeconfig
kc() { "$bin/kubectl" --request-timeout=10s "$@"; }

# --- etcd -----------------------------------------------------------------------------------------
spawn etcd "$bin/etcd" --name=tollgate --data-dir="$dir/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster="tollgate=http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync --quota-backend-bytes=2147483648 --log-level=warn

# --- kube-apiserver -------------------------------------------------------------------------------
spawn kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
  --endpoint-reconciler-type=none \
  --authorization-mode=RBAC --anonymous-auth=false \
  --client-ca-file="$pki/ca.crt" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range="$service_cidr" \
  --allow-privileged=true --profiling=false --watch-cache=true \
  --requestheader-client-ca-file="$pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota \
  ${audit[@]+"${audit[@]}"} \
  --v=1

wait_for() { # description, command...
  local what=$1; shift
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    for p in $(cut -d' ' -f1 "$dir/pids"); do
      kill -0 "$p" 2>/dev/null || fail "process $(grep "^$p " "$dir/pids") exited while waiting for $what"
    done
    sleep 0.2
  done
}
curl_api() { curl -sf --max-time 3 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server$1"; }
wait_for "kube-apiserver /readyz" curl_api /readyz

# --- kube-controller-manager, kube-scheduler, kwok -------------------------------------------------
spawn kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig="$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$dir/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$kcm_port" \
  --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' \
  --concurrent-deployment-syncs=10 --concurrent-replicaset-syncs=10 \
  --horizontal-pod-autoscaler-sync-period=2s \
  ${kcm_qps[@]+"${kcm_qps[@]}"} \
  --v=1
spawn kube-scheduler "$bin/kube-scheduler" \
  --kubeconfig="$dir/scheduler.kubeconfig" \
  --authentication-kubeconfig="$dir/scheduler.kubeconfig" \
  --authorization-kubeconfig="$dir/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false --v=1
kwok_config=("--config=$bin/kwok-stages.yaml" "--config=$here/kwok-pod-ready-again.yaml")
[ "$metrics_server" = 0 ] || kwok_config+=("--config=$bin/kwok-metrics.yaml")
spawn kwok "$bin/kwok" --kubeconfig="$dir/kwok.kubeconfig" "${kwok_config[@]}" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom \
  --cidr="$pod_cidr" --node-ip=127.0.0.1 --node-port=0 \
  --server-address="127.0.0.1:$kwok_port"
# metrics-server: a host process like the rest (the metrics API: see the section below). Every
# fake node has kwok's address and port, and its own metrics path (a node annotation below).
[ "$metrics_server" = 0 ] || spawn metrics-server "$bin/metrics-server" \
  --bind-address=127.0.0.1 --secure-port="$ms_port" \
  --tls-cert-file="$pki/metrics-server-serving.crt" --tls-private-key-file="$pki/metrics-server-serving.key" \
  --kubeconfig="$dir/metrics-server.kubeconfig" \
  --authentication-kubeconfig="$dir/metrics-server.kubeconfig" \
  --authorization-kubeconfig="$dir/metrics-server.kubeconfig" \
  --kubelet-port="$kwok_port" --kubelet-insecure-tls \
  --kubelet-preferred-address-types=InternalIP \
  --metric-resolution=10s --kubelet-request-timeout=5s --v=1

# Fake nodes (no taint: every workload of the test cluster lands on them).
for i in $(seq 0 $(( nodes - 1 ))); do
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
    # Where metrics-server finds this node's resource metrics on kwok's server.
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$i/metrics/resource
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "$max_pods"}
  capacity: {cpu: "64", memory: 256Gi, pods: "$max_pods"}
EOF
done > "$dir/nodes.yaml"
# Read-only RBAC for Prometheus' pod discovery and the pod runner.
cat > "$dir/rbac.yaml" <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tollgate-test-pod-reader}
rules:
- apiGroups: [""]
  resources: [pods, namespaces, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tollgate-test-pod-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tollgate-test-pod-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: tollgate-prometheus}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: tollgate-pod-runner}
EOF
wait_for "RBAC bootstrap" kc get clusterrole system:kube-scheduler
kc apply -f "$dir/nodes.yaml" -f "$dir/rbac.yaml" >/dev/null || fail "creating nodes and RBAC"

# --- the metrics API ------------------------------------------------------------------------------
# metrics-server (started above) is registered as an APIService. The apiserver reaches it through
# an ExternalName Service (127.0.0.1): pod and Service IPs here are loopback, which Endpoints
# refuse, and an ExternalName Service is resolved to its name and the APIService's port without
# any proxy.
if [ "$metrics_server" = 1 ]; then
  cat > "$dir/metrics-server.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec: {type: ExternalName, externalName: 127.0.0.1}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: $ms_port}
  caBundle: $(base64 -w0 "$pki/ca.crt")
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
  # Registered once it answers, so the aggregator's first check finds it up.
  curl_ms() { curl -sf --max-time 2 --cacert "$pki/ca.crt" "https://127.0.0.1:$ms_port/livez"; }
  wait_for "metrics-server livez" curl_ms
  kc apply -f "$dir/metrics-server.yaml" >/dev/null || fail "registering the metrics API"
fi

# --- Prometheus -----------------------------------------------------------------------------------
prom_url=""
prom_sd=none
if [ "${TOLLGATE_PROMETHEUS:-1}" != 0 ]; then
  command -v prometheus >/dev/null || fail "prometheus not installed (run build.sh)"
  # Preferred: discovery through this apiserver (kubernetes_sd_configs, role pod). Debian's
  # prometheus is built without the Kubernetes SD plugin ("field kubernetes_sd_configs not found"),
  # so when promtool rejects it we fall back to file_sd, written by the pod runner from the same
  # pod objects with the same labels.
  scrape_s=${TOLLGATE_SCRAPE_INTERVAL:-2}
  [[ $scrape_s =~ ^[1-9][0-9]*$ ]] || fail "TOLLGATE_SCRAPE_INTERVAL=$scrape_s: whole seconds, at least 1"
  # The timeout must stay below the interval: three quarters of it (1500ms at the default 2s).
  cat > "$dir/prometheus/global.yml" <<EOF
global:
  scrape_interval: ${scrape_s}s
  scrape_timeout: $(( scrape_s * 750 ))ms
  evaluation_interval: ${scrape_s}s
scrape_configs:
- job_name: pods
EOF
  cat "$dir/prometheus/global.yml" - > "$dir/prometheus/kubernetes-sd.yml" <<EOF
  kubernetes_sd_configs:
  - role: pod
    api_server: $server
    tls_config:
      ca_file: $pki/ca.crt
      cert_file: $pki/prometheus.crt
      key_file: $pki/prometheus.key
  relabel_configs:
  # Running pods with an IP only; opt out with the annotation prometheus.io/scrape: "false".
  - source_labels: [__meta_kubernetes_pod_phase]
    regex: Running
    action: keep
  - source_labels: [__meta_kubernetes_pod_ip]
    regex: .+
    action: keep
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
    regex: "false"
    action: drop
  # One target per pod: the demo app's port (8080, or the annotation prometheus.io/port).
  - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
    regex: (.+);(\d+)
    replacement: \$1:\$2
    target_label: __address__
  - source_labels: [__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]
    regex: (.+);
    replacement: \$1:8080
    target_label: __address__
  - action: labelmap
    regex: __meta_kubernetes_pod_label_(.+)
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
  - source_labels: [__meta_kubernetes_pod_node_name]
    target_label: node
  # track / rollout: from plain labels (labelmap above) or the tollgate.dev/ ones.
  - source_labels: [__meta_kubernetes_pod_label_tollgate_dev_track]
    regex: (.+)
    target_label: track
  - source_labels: [__meta_kubernetes_pod_label_tollgate_dev_rollout]
    regex: (.+)
    target_label: rollout
EOF
  cat "$dir/prometheus/global.yml" - > "$dir/prometheus/file-sd.yml" <<EOF
  file_sd_configs:
  - files: [$dir/prometheus/targets.json]
    refresh_interval: 5s
EOF
  echo '[]' > "$dir/prometheus/targets.json"
  if promtool check config "$dir/prometheus/kubernetes-sd.yml" >"$dir/logs/promtool.log" 2>&1; then
    prom_sd=kubernetes
  else
    prom_sd=file
    [ -n "${TOLLGATE_POD_RUNNER:-}" ] || log "warning: Prometheus falls back to file_sd, which the pod runner writes; no pod runner: no targets"
  fi
  cp "$dir/prometheus/$([ $prom_sd = kubernetes ] && echo kubernetes-sd || echo file-sd).yml" "$dir/prometheus/prometheus.yml"
  spawn prometheus prometheus --config.file="$dir/prometheus/prometheus.yml" \
    --storage.tsdb.path="$dir/prometheus/data" --storage.tsdb.retention.time=2h \
    --web.listen-address="127.0.0.1:$prom_port" --web.enable-lifecycle \
    --log.level=warn
  prom_url=http://127.0.0.1:$prom_port
fi

# --- pod runner -----------------------------------------------------------------------------------
runner_url=""
if [ -n "${TOLLGATE_POD_RUNNER:-}" ]; then
  [ -x "$TOLLGATE_POD_RUNNER" ] || fail "TOLLGATE_POD_RUNNER=$TOLLGATE_POD_RUNNER is not executable"
  runner_mode=()
  if [ "${TOLLGATE_POD_RUNNER_INLINE:-0}" = 1 ]; then
    runner_mode=(--inline)
  else
    [ -x "${DEMO_APP_BIN:-}" ] || fail "DEMO_APP_BIN must name the demo-app binary"
    runner_mode=(--demo-app "$DEMO_APP_BIN")
  fi
  KUBECONFIG=$dir/pod-runner.kubeconfig spawn pod-runner "$TOLLGATE_POD_RUNNER" \
    "${runner_mode[@]}" --termination-grace-ms "${TOLLGATE_POD_RUNNER_GRACE_MS:-1500}" --pod-cidr "$pod_cidr" --status-listen "127.0.0.1:$runner_port" \
    --selector "${TOLLGATE_POD_RUNNER_SELECTOR:-}" --log-dir "$dir/logs/pods" --file-sd "$dir/prometheus/targets.json"
  runner_url=http://127.0.0.1:$runner_port
fi

# --- env file -------------------------------------------------------------------------------------
cat > "$dir/env" <<EOF
# written by tests/cluster/start.sh; source it or set TOLLGATE_TEST_ENV=$dir/env
TOLLGATE_CLUSTER_DIR=$dir
KUBECONFIG=$dir/admin.kubeconfig
TOLLGATE_APISERVER=$server
TOLLGATE_CA_FILE=$pki/ca.crt
TOLLGATE_POD_CIDR=$pod_cidr
TOLLGATE_KUBERNETES_VERSION=$KUBERNETES_VERSION
TOLLGATE_BIN_DIR=$bin
KUBECTL=$bin/kubectl
HELM=$bin/helm
GATEWAY_API_CRDS=$bin/gateway-api-$GATEWAY_API_VERSION
PROMETHEUS_URL=$prom_url
TOLLGATE_METRICS_API=$metrics_server
TOLLGATE_PROMETHEUS_SD=$prom_sd
TOLLGATE_SCRAPE_INTERVAL_SECONDS=${scrape_s:-2}
TOLLGATE_POD_RUNNER_URL=$runner_url
DEMO_APP_BIN=${DEMO_APP_BIN:-}
LOAD_GEN_BIN=${LOAD_GEN_BIN:-}
EOF
if [ -n "${PACT_BROKER_URL:-}" ]; then echo "PACT_BROKER_URL=$PACT_BROKER_URL" >> "$dir/env"; fi

# --- Ready ----------------------------------------------------------------------------------------
nodes_ready() {
  [ "$(kc get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -eq "$nodes" ]
}
wait_for "$nodes fake nodes Ready" nodes_ready
wait_for "default service account" kc -n default get serviceaccount default
curl_kcm() { curl -sfk --max-time 2 "https://127.0.0.1:$kcm_port/healthz"; }
curl_sched() { curl -sfk --max-time 2 "https://127.0.0.1:$sched_port/healthz"; }
wait_for "kube-controller-manager healthz" curl_kcm
wait_for "kube-scheduler healthz" curl_sched
if [ -n "$prom_url" ]; then
  prom_ready() { curl -sf --max-time 2 "$prom_url/-/ready"; }
  wait_for "prometheus ready" prom_ready
fi
if [ "$metrics_server" = 1 ]; then
  metrics_api_available() {
    [ "$(kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}')" = True ]
  }
  wait_for "the metrics API (APIService v1beta1.metrics.k8s.io) Available" metrics_api_available
fi
if [ -n "$runner_url" ]; then
  runner_ready() { curl -sf --max-time 2 "$runner_url/healthz"; }
  wait_for "pod runner ready" runner_ready
fi
elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
log "cluster Ready in ${elapsed}s: apiserver $server, prometheus ${prom_url:-off} (sd: $prom_sd), metrics API $([ "$metrics_server" = 1 ] && echo "on (metrics-server 127.0.0.1:$ms_port)" || echo off), pod runner ${runner_url:-off}"
echo "TOLLGATE_START_SECONDS=$elapsed" >> "$dir/env"
echo "$dir/env"
