#!/usr/bin/env bash
# The README's first command. The full demo (local cluster, Prometheus, stub broker, demo app,
# operator, one rollout promoted and one rolled back) arrives with the controller; until then
# this builds tollgate and shows what already works: the CRD and the example Rollouts.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}"

echo "== building tollgate"
cargo build --quiet
bin="$CARGO_TARGET_DIR/debug/tollgate"

echo "== the Rollout CRD (tollgate crd), first lines"
"$bin" crd | head -20

echo
echo "The end-to-end demo (a rollout promoted and one rolled back on a local cluster) is not"
echo "built yet: it needs the controller. See README.md, section 'Status'."
