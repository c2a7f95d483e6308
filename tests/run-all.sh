#!/usr/bin/env bash
# The README's test command: every test tier, from a fresh clone, installing what it needs.
#
#   tier 1  unit and property tests (pure logic, CRD, statistics against stored references)
#   tier 2+ component and cluster tests against real local peers (added as the peers land)
#
# Build outputs go to $CARGO_TARGET_DIR (default ~/.cache/tollgate/target), outside the clone,
# so repeated runs on one machine reuse them; nothing assumes they exist.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

start=$(date +%s)
echo "== building the workspace binaries (tollgate, demo-app: component tests spawn them)"
cargo build --workspace --bins

echo "== tier 1 and 2: unit, property and reference tests; component tests on real processes"
cargo test --workspace
echo "== all tiers passed in $(( $(date +%s) - start ))s"
