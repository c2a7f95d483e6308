#!/usr/bin/env bash
# The fault matrix tier: whole rollouts through Toxiproxy (tests/it/fault_matrix_rollouts.rs) on
# a throwaway local cluster, every test at once (they use their own namespaces, operators,
# proxies and, for the kube-apiserver and etcd restarts, a private control plane), so the tier
# takes about as long as its longest test. Prints the rows (`fault-matrix | ...`) for
# docs/reliability.md.
#
# Usage: tests/cluster/fault-matrix.sh [extra cargo test args after --]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
TOLLGATE_TOXIPROXY="$(bash tests/cluster/toxiproxy.sh install | tail -n1)"
export TOLLGATE_TOXIPROXY
start=$(date +%s)
# Both modules: the whole matrix and the smoke's own rows (the restarts); the smoke's other cells
# repeat matrix cells, so they are skipped here.
bash tests/cluster/run-peer-tests.sh --test it fault_matrix_ -- \
  --ignored --nocapture --test-threads=8 \
  --skip fault_matrix_smoke::api_server_connection_reset --skip fault_matrix_smoke::prometheus_half_open \
  --skip fault_matrix_smoke::broker_reset "$@"
echo "== fault matrix passed in $(( $(date +%s) - start ))s"
