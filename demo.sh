#!/usr/bin/env bash
# The README's first command: sets everything up and runs the demo on this machine.
#
#   1. builds the peers once (Kubernetes from its Go module, kwok, helm; Debian's Prometheus;
#      cached in ${TOLLGATE_CACHE:-~/.cache/tollgate}) and the tollgate workspace;
#   2. starts a throwaway local cluster (kube-apiserver, controller-manager, scheduler, kwok
#      with loopback pod IPs, a real demo-app process per pod, Prometheus scraping them);
#   3. starts the tollgate operator;
#   4. deploys two services at 1.0.0, then rolls both to 2.0.0 under load: "checkout" 2.0.0 is
#      healthy and is promoted; "payments" 2.0.0 triples its error rate and is rolled back by
#      the sequential analysis;
#   5. prints the evidence (`tollgate status`), and tears everything down.
#
# Everything binds to 127.0.0.0/8. Cold (first run): about half an hour, mostly Kubernetes'
# Go build on two cores; warm: about three minutes.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
t0=$(date +%s)
say() { printf '\n\033[1m== %s\033[0m (%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

say "building the peers (cached after the first run; the first build takes a while)"
bash tests/cluster/build.sh
say "building tollgate, the demo app and the test bed"
cargo build --workspace --bins
bins=$CARGO_TARGET_DIR/debug
tollgate=$bins/tollgate

dir=$(mktemp -d /tmp/tollgate-demo.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "cleaning up"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash "$repo/tests/cluster/stop.sh" "$dir" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting a local cluster"
envfile=$(TOLLGATE_CLUSTER_DIR=$dir TOLLGATE_POD_RUNNER=$bins/pod-runner DEMO_APP_BIN=$bins/demo-app \
  LOAD_GEN_BIN=$bins/load-gen bash tests/cluster/start.sh)
set -a
# shellcheck disable=SC1090
. "$envfile"
set +a
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }

say "installing the Rollout CRD and starting the operator"
k apply --server-side -f crds/rollouts.tollgate.dev.yaml >/dev/null
k wait --for=condition=Established crd/rollouts.tollgate.dev --timeout=60s >/dev/null
k create namespace demo >/dev/null
# The Rollouts below name no Prometheus: they use the operator's default (--prometheus-url).
"$tollgate" controller --kubeconfig "$KUBECONFIG" --namespace demo --admin-addr 127.0.0.1:0 \
  --prometheus-url "$PROMETHEUS_URL" >"$dir/operator.log" 2>&1 &
operator_pid=$!
pids+=("$operator_pid")

rollout() { # name version error-rate
  cat <<EOF
apiVersion: tollgate.dev/v1alpha1
kind: Rollout
metadata:
  name: $1
  namespace: demo
spec:
  version: "$2"
  replicas: 4
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      labels: {app: $1}
    spec:
      containers:
        - name: app
          image: "demo/$1:$2"
          ports: [{name: http, containerPort: 8080}]
          env:
            - {name: DEMO_VERSION, value: "$2"}
            - {name: DEMO_ERROR_RATE, value: "$3"}
  steps:
    - setWeight: 25
    - analyze: {duration: 3m}
    - setWeight: 50
    - analyze: {duration: 3m}
  progressDeadline: 2m
  analysis:             # reads the operator's default Prometheus
    interval: 10s
    minRequests: 100
    errorRate: {passTolerance: 2.0}
    onInconclusive: Rollback
EOF
}

say "deploying checkout and payments at 1.0.0 (first deployment: straight to stable, fleet verified)"
rollout checkout 1.0.0 0.05 | k apply -f - >/dev/null
rollout payments 1.0.0 0.05 | k apply -f - >/dev/null
for r in checkout payments; do
  "$tollgate" status "$r" -n demo --kubeconfig "$KUBECONFIG" --wait --timeout 2m >/dev/null
done
k get rollouts.tollgate.dev -n demo

say "sending traffic to every ready pod of both services (200 requests/s each)"
for r in checkout payments; do
  "$LOAD_GEN_BIN" --namespace demo --selector "tollgate.dev/rollout=$r" --rate 200 --duration-secs 600 \
    >"$dir/load-$r.json" 2>"$dir/load-$r.err" &
  pids+=($!)
done

say "rolling out 2.0.0: checkout healthy (5% errors like 1.0.0), payments with 15% errors"
rollout checkout 2.0.0 0.05 | k apply -f - >/dev/null
rollout payments 2.0.0 0.15 | k apply -f - >/dev/null

rc_checkout=0
rc_payments=0
"$tollgate" status checkout -n demo --kubeconfig "$KUBECONFIG" --wait --timeout 8m >/dev/null || rc_checkout=$?
"$tollgate" status payments -n demo --kubeconfig "$KUBECONFIG" --wait --timeout 8m >/dev/null || rc_payments=$?

say "the evidence: kubectl get rollouts"
k get rollouts.tollgate.dev -n demo
say "the evidence: tollgate status checkout (also: kubectl tollgate status checkout)"
"$tollgate" status checkout -n demo --kubeconfig "$KUBECONFIG"
say "the evidence: tollgate status payments"
"$tollgate" status payments -n demo --kubeconfig "$KUBECONFIG"
say "the Events of payments"
k get events -n demo --field-selector involvedObject.kind=Rollout,involvedObject.name=payments \
  -o custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message --sort-by=.metadata.creationTimestamp | tail -12

peak=$(awk '/VmHWM/ {print $2, $3}' "/proc/$operator_pid/status" 2>/dev/null || true)
[ -n "$peak" ] && echo "operator peak memory (VmHWM): $peak"

if [ "$rc_checkout" -eq 0 ] && [ "$rc_payments" -eq 1 ]; then
  say "demo done: checkout 2.0.0 was promoted, payments 2.0.0 was rolled back"
else
  echo "unexpected outcome: checkout exit $rc_checkout (want 0), payments exit $rc_payments (want 1)" >&2
  echo "operator log: $dir/operator.log (last lines below)" >&2
  tail -30 "$dir/operator.log" >&2
  exit 1
fi
