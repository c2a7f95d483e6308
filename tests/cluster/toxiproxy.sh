#!/usr/bin/env bash
# toxiproxy.sh: build (once) Toxiproxy's server from its Go module, the fault proxy of the fault
# matrix (tests/it/fault_matrix.rs).
#
#   tests/cluster/toxiproxy.sh install
#       Builds toxiproxy-server $TOXIPROXY_VERSION with `go install` into
#       $CACHE/toxiproxy-<ver>/bin; reused when present. Prints the binary's path as its last line.
#
# The Rust tests find the binary through TOLLGATE_TOXIPROXY:
#   export TOLLGATE_TOXIPROXY="$(tests/cluster/toxiproxy.sh install | tail -n1)"
set -euo pipefail

# shellcheck source=versions.env
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/versions.env"

CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
ROOT="$CACHE/toxiproxy-$TOXIPROXY_VERSION"
BIN="$ROOT/bin/toxiproxy-server"

case "${1:-install}" in
  install)
    if [ ! -x "$BIN" ]; then
      mkdir -p "$ROOT/bin"
      echo "building toxiproxy-server $TOXIPROXY_VERSION into $ROOT" >&2
      GOBIN="$ROOT/gobin" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" >&2
      mv "$ROOT/gobin/server" "$BIN"
      rm -rf "$ROOT/gobin"
    fi
    echo "$BIN"
    ;;
  *)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
