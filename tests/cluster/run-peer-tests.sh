#!/usr/bin/env bash
# Builds the peers (once, cached), starts a throwaway local cluster with the pod runner and
# Prometheus, runs the tests that need them, and always tears everything down (trap), even when a
# test fails or the run is interrupted.
#
# Usage: tests/cluster/run-peer-tests.sh [cargo test args...]
#   default args: --workspace -- --include-ignored   (every test, the peer tests included)
#   e.g.          --test it e2e_rollout:: -- --include-ignored   (one module of the tests/it crate)
# Set PACT_BROKER_URL before calling to hand a running broker to the tests (recorded in the env file).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
t0=$(date +%s)

echo "== peers: build (cached in ${TOLLGATE_CACHE:-$HOME/.cache/tollgate})"
bash tests/cluster/build.sh >/dev/null
t_build=$(date +%s)
cargo build --workspace --bins
bins=$CARGO_TARGET_DIR/debug

dir=$(mktemp -d /tmp/tollgate-cluster.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  bash tests/cluster/stop.sh "$dir" || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== peers: start"
envfile=$(TOLLGATE_CLUSTER_DIR=$dir TOLLGATE_POD_RUNNER=$bins/pod-runner DEMO_APP_BIN=$bins/demo-app \
  LOAD_GEN_BIN=$bins/load-gen bash tests/cluster/start.sh)
export TOLLGATE_TEST_ENV=$envfile
t_start=$(date +%s)

echo "== tests"
if [ $# -eq 0 ]; then set -- --workspace -- --include-ignored; fi
# The cargo test output is also kept (TOLLGATE_TEST_LOG, default a temp file) for the totals.
log=${TOLLGATE_TEST_LOG:-$(mktemp /tmp/tollgate-test-log.XXXXXX)}
set +e
cargo test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
t_end=$(date +%s)
echo "== peer run totals: $(bash tests/cluster/test-totals.sh "$log")"
# The e2e operators append "<identity-namespace> - <VmHWM kB>" here when they stop.
peaks=$dir/operator-peaks.txt
if [ -s "$peaks" ]; then
  sort -k3 -n "$peaks" | tail -1 | awk -v n="$(wc -l < "$peaks")" \
    '{printf "== operator peak memory (VmHWM): max %.1f MB (over %d operator processes; highest: %s)\n", $3/1024, n, $1}'
fi
[ "$rc" -eq 0 ] || exit "$rc"
echo "== peer tests passed: build/check $(( t_build - t0 ))s, start $(( t_start - t_build ))s (incl. cargo build), tests $(( t_end - t_start ))s"
