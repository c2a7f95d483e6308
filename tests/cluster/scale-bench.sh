#!/usr/bin/env bash
# The scale bench (issue 20): one tollgate operator over N Rollouts x 2 pods in 10 namespaces,
# beside unrelated pods, on a throwaway local control plane with kwok; every pod answers through
# ONE pod-runner process (`--inline`, a listener per pod IP). Measures the operator by phase
# (startup, steady, single canary, churn of 10% at once): RSS, CPU seconds, API requests by verb
# and resource (the apiserver's audit log of the operator's own user), status writes, Rollout
# watch events, Prometheus queries per minute, spec->first-status-write latency and canary
# completion times. Then the same for the Argo Rollouts controller (tests/cluster/argo-rollouts.sh,
# the same workload shape in fresh namespaces, its own user) and one side-by-side table.
# Prints the tables; writes JSON and the tables. A benchmark: it asserts no speed.
#
# Usage: tests/cluster/scale-bench.sh            (N=1000, 5,000 unrelated pods, release build,
#                                                 tollgate then Argo Rollouts; run as root)
# Knobs (environment):
#   TOLLGATE_BENCH_ROLLOUTS      N (default 1000)
#   TOLLGATE_BENCH_UNRELATED     unrelated pods (default 5000)
#   TOLLGATE_BENCH_STEADY_SECONDS  length of the steady window (default 120)
#   TOLLGATE_BENCH_PROFILE       release (default) or debug: the operator's cargo profile
#   TOLLGATE_BENCH_OUT           output prefix (default: a temp dir); writes <prefix>.json, .txt
#   TOLLGATE_BENCH_OPERATOR_ARGS extra `tollgate controller` args (space-separated)
#   TOLLGATE_BENCH_POD_CIDR      loopback pod range (default 127.64.0.0/17; never 127.0.10-45.x)
#   TOLLGATE_BENCH_TIMEOUT       seconds to wait for any phase (default 900 + 2 s per Rollout: N=1000
#                                took 15.5 min to all Succeeded at load average 20)
#   TOLLGATE_BENCH_ANALYSIS      1 (default): the Rollouts' last step is an analyze step judged against
#                                the cluster's Prometheus (errorRate and latency on the demo-app series,
#                                see analysis_spec in scale_bench.py), with two load-gens for traffic;
#                                0: a pause instead, no traffic, no Prometheus queries
#   TOLLGATE_BENCH_SCRAPE_INTERVAL  Prometheus' scrape interval in seconds (default 10: every bench pod
#                                is a target, from the pod runner's file_sd)
#   TOLLGATE_BENCH_CANARY_RPS    requests/s spread over all canary pods (default 100)
#   TOLLGATE_BENCH_ANALYSIS_INTERVAL  the analysis's look interval (default 30s; the smoke's 10s, with a
#                                5-second scrape, so its canaries pass in about a third of the time)
#   TOLLGATE_BENCH_STABLE_RPS    requests/s spread over all stable pods (default 200)
#   TOLLGATE_BENCH_SOAK_MINUTES  phase soak after churn: this many minutes of a new version on the
#                                next Rollout every TOLLGATE_BENCH_SOAK_EVERY seconds (default 0 = off)
#   TOLLGATE_BENCH_SOAK_EVERY    seconds between two new versions in the soak (default 5)
#   TOLLGATE_BENCH_SOAK_WARMUP_MINUTES  the soak's RSS growth is measured from here (default 10)
#   TOLLGATE_BENCH_CHECK         1: fail when a figure is missing (the smoke in tests/run-all.sh)
#   TOLLGATE_BENCH_OPERATOR_WRAPPER  a command prefix for the operator, e.g. "heaptrack -o /tmp/h": a
#                                diagnosis (its RSS and CPU figures are then the wrapper process's)
#   TOLLGATE_BENCH_SMOKE         1: the smoke's defaults (N=100, 500 unrelated pods, steady 20 s,
#                                debug build, pod CIDR 127.96.0.0/17, the check on, TOLLGATE_BENCH_ARGO=cached,
#                                a 10-second analysis interval over a 5-second scrape)
#   TOLLGATE_BENCH_ARGO          Argo Rollouts (tests/cluster/argo-rollouts.sh) in the same run, after
#                                tollgate, on the same cluster in fresh namespaces (tollgate's deleted first):
#                                1 (default): build it if needed (cold: 5-9 min) and run it;
#                                cached: run it only if already built, else skip with a note (the smoke);
#                                only: Argo alone; 0: tollgate alone.
#                                Its controller binds 0.0.0.0 (no bind-address flag): the bench then
#                                re-runs itself inside a private network namespace (`unshare --net`,
#                                loopback only; needs root) after building outside it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "${TOLLGATE_BENCH_SMOKE:-0}" = 1 ]; then
  : "${TOLLGATE_BENCH_ROLLOUTS:=100}" "${TOLLGATE_BENCH_UNRELATED:=500}" "${TOLLGATE_BENCH_STEADY_SECONDS:=20}"
  : "${TOLLGATE_BENCH_PROFILE:=debug}" "${TOLLGATE_BENCH_POD_CIDR:=127.96.0.0/17}" "${TOLLGATE_BENCH_CHECK:=1}"
  : "${TOLLGATE_BENCH_TIMEOUT:=300}" "${TOLLGATE_BENCH_ARGO:=cached}"
  : "${TOLLGATE_BENCH_ANALYSIS_INTERVAL:=10s}" "${TOLLGATE_BENCH_SCRAPE_INTERVAL:=5}"
fi
argo_mode=${TOLLGATE_BENCH_ARGO:-1}
n=${TOLLGATE_BENCH_ROLLOUTS:-1000}
unrelated=${TOLLGATE_BENCH_UNRELATED:-5000}
steady=${TOLLGATE_BENCH_STEADY_SECONDS:-120}
profile=${TOLLGATE_BENCH_PROFILE:-release}
pod_cidr=${TOLLGATE_BENCH_POD_CIDR:-127.64.0.0/17}
case $pod_cidr in
  127.0.*) echo "scale-bench.sh: $pod_cidr overlaps the test clusters' 127.0.x ranges; refusing" >&2; exit 2 ;;
  127.*) ;;
  *) echo "scale-bench.sh: $pod_cidr is not loopback; refusing" >&2; exit 2 ;;
esac
out=${TOLLGATE_BENCH_OUT:-$(mktemp -d /tmp/tollgate-scale-bench.XXXXXX)/scale}
mkdir -p "$(dirname "$out")"

# One listener per pod: the rollouts' pods and their canaries (the unrelated pods get none).
need_fds=$(( n * 4 + 1024 ))
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$need_fds" 2>/dev/null || { echo "scale-bench.sh: ulimit -n $(ulimit -n) < $need_fds and cannot be raised" >&2; exit 2; }
fi

flags=(); dirname=debug
[ "$profile" = release ] && { flags=(--release); dirname=release; }
if [ "${TOLLGATE_BENCH_BUILT:-0}" != 1 ]; then
  echo "== peers: build (cached in ${TOLLGATE_CACHE:-$HOME/.cache/tollgate})" >&2
  bash tests/cluster/build.sh >/dev/null
  cargo build -q "${flags[@]}" --bin tollgate
  cargo build -q -p tollgate-testbed --bin pod-runner --bin load-gen
fi
bins=$CARGO_TARGET_DIR/debug

# --- argo: which controllers run, and the Argo Rollouts build --------------------------------------
controllers=tollgate
argo_dir=""
case $argo_mode in
  0) ;;
  1|only)
    argo_dir=$(bash tests/cluster/argo-rollouts.sh)
    controllers=$([ "$argo_mode" = only ] && echo argo || echo tollgate,argo) ;;
  cached)
    if argo_dir=$(bash tests/cluster/argo-rollouts.sh --cached-only 2>/dev/null); then
      controllers=tollgate,argo
    else
      argo_dir=""
      echo "== argo: not built (tests/cluster/argo-rollouts.sh builds it, 5-9 min cold); tollgate alone" >&2
    fi ;;
  *) echo "scale-bench.sh: TOLLGATE_BENCH_ARGO=$argo_mode: want 1, cached, only or 0" >&2; exit 2 ;;
esac
# Argo's listeners are on 0.0.0.0: only in a network namespace whose one interface is loopback.
# (`ip -o link`, not /sys/class/net: sysfs shows the netns it was mounted in.)
if [ -n "$argo_dir" ] && [ "$(ip -o link | awk -F': ' '{print $2}' | tr '\n' ' ')" != "lo " ]; then
  if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    echo "== argo: re-running inside a private network namespace (unshare --net)" >&2
    export TOLLGATE_BENCH_BUILT=1 TOLLGATE_BENCH_ARGO=$argo_mode
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$repo/tests/cluster/scale-bench.sh" "$@"
  elif [ "$argo_mode" = cached ]; then
    echo "== argo: not root, cannot make a private network namespace for its 0.0.0.0 listeners; tollgate alone" >&2
    controllers=tollgate; argo_dir=""
  else
    echo "scale-bench.sh: Argo Rollouts listens on 0.0.0.0; run as root (the bench makes a private netns) or inside one" >&2
    exit 2
  fi
fi

dir=$(mktemp -d /tmp/tollgate-cluster.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  bash tests/cluster/stop.sh "$dir" || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nodes for every pod: N*2 (+ canaries) + unrelated, 1,000 a node.
nodes=$(( (n * 4 + unrelated) / 1000 + 2 ))
echo "== cluster: $nodes fake nodes, pod CIDR $pod_cidr" >&2
envfile=$(TOLLGATE_CLUSTER_DIR=$dir TOLLGATE_POD_CIDR=$pod_cidr TOLLGATE_NODES=$nodes \
  TOLLGATE_SCRAPE_INTERVAL=${TOLLGATE_BENCH_SCRAPE_INTERVAL:-10} \
  TOLLGATE_NODE_MAX_PODS=1000 TOLLGATE_KCM_QPS=200 TOLLGATE_METRICS_SERVER=0 \
  TOLLGATE_POD_RUNNER=$bins/pod-runner TOLLGATE_POD_RUNNER_INLINE=1 TOLLGATE_POD_RUNNER_GRACE_MS=0 TOLLGATE_POD_RUNNER_SELECTOR=bench \
  TOLLGATE_AUDIT_USERS=tollgate-bench,argo-bench bash tests/cluster/start.sh)
# shellcheck disable=SC1090
set -a; source "$envfile"; set +a

# Each controller's own user (cluster-admin through system:masters; its requests are told apart
# in the audit log by this name).
pki=$dir/pki
for user in tollgate-bench argo-bench; do
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=$user" \
    -keyout "$pki/$user.key" -out "$pki/$user.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$user.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$pki/client.ext" -out "$pki/$user.crt" 2>/dev/null
  sed -e "s#$pki/admin\.#$pki/$user.#g" -e "s/name: admin\$/name: $user/; s/user: admin,/user: $user,/" \
    "$dir/admin.kubeconfig" > "$dir/$user.kubeconfig"
done
"$KUBECTL" apply --server-side -f crds/ >/dev/null
argo_flags=()
if [ -n "$argo_dir" ]; then
  # Server-side: client-side apply's last-applied annotation exceeds its limit on these CRDs.
  for f in "$argo_dir"/crds/*-crd.yaml; do "$KUBECTL" apply --server-side -f "$f" >/dev/null; done
  argo_flags=(--argo-controller "$argo_dir/rollouts-controller" --argo-kubeconfig "$dir/argo-bench.kubeconfig")
  for a in ${TOLLGATE_BENCH_ARGO_ARGS:-}; do argo_flags+=(--argo-arg="$a"); done
fi

analysis_args=()
if [ "${TOLLGATE_BENCH_ANALYSIS:-1}" = 1 ]; then
  analysis_args=(--load-gen "$bins/load-gen" --canary-rps "${TOLLGATE_BENCH_CANARY_RPS:-100}"
    --stable-rps "${TOLLGATE_BENCH_STABLE_RPS:-200}" --analysis-interval "${TOLLGATE_BENCH_ANALYSIS_INTERVAL:-30s}")
fi
operator_args=()
for a in ${TOLLGATE_BENCH_OPERATOR_ARGS:-}; do operator_args+=(--operator-arg="$a"); done
echo "== bench: N=$n, $unrelated unrelated pods, steady ${steady}s, operator $profile, controllers $controllers" >&2
python3 tests/cluster/scale_bench.py --env "$envfile" --controllers "$controllers" ${argo_flags[@]+"${argo_flags[@]}"} \
  --tollgate "$CARGO_TARGET_DIR/$dirname/tollgate" --operator-kubeconfig "$dir/tollgate-bench.kubeconfig" \
  --rollouts "$n" --unrelated-pods "$unrelated" --steady-seconds "$steady" \
  --timeout "${TOLLGATE_BENCH_TIMEOUT:-$(( 900 + 2 * n ))}" ${operator_args[@]+"${operator_args[@]}"} \
  ${analysis_args[@]+"${analysis_args[@]}"} \
  --soak-minutes "${TOLLGATE_BENCH_SOAK_MINUTES:-0}" --soak-every "${TOLLGATE_BENCH_SOAK_EVERY:-5}" \
  --soak-warmup-minutes "${TOLLGATE_BENCH_SOAK_WARMUP_MINUTES:-10}" \
  --json "$out.json" --txt "$out.txt" $([ "${TOLLGATE_BENCH_CHECK:-0}" = 1 ] && echo --check)
cp "$dir/logs/operator.log" "$out.operator.log" 2>/dev/null || true
cp "$dir/logs/argo-rollouts.log" "$out.argo-rollouts.log" 2>/dev/null || true
echo "== results: $out.json $out.txt" >&2
