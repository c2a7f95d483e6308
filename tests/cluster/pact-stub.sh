#!/usr/bin/env bash
# pact-stub.sh: install (once) and run pact-stub-server, the Pact Broker stand-in for tollgate's tests.
#
#   tests/cluster/pact-stub.sh install
#       Installs pact-stub-server $PACT_STUB_SERVER_VERSION from crates.io with
#       `cargo install --locked --root $CACHE/pact-stub-server-<ver>`; reused when already present.
#       Prints the binary's path on stdout (last line).
#   tests/cluster/pact-stub.sh path
#       Prints the binary's path if installed, exits 1 otherwise.
#   tests/cluster/pact-stub.sh start PORT PACT_FILE [PACT_FILE...]
#       Installs if needed, then runs the stub on 127.0.0.1:PORT serving the given pact files, in the
#       foreground (exec), so the caller owns the process id.
#
# The cache folder is ${TOLLGATE_CACHE:-$HOME/.cache/tollgate}. The tests find the binary through the
# environment variable TOLLGATE_PACT_STUB_SERVER; tests/run-all.sh (or you) can set it with
#   export TOLLGATE_PACT_STUB_SERVER="$(tests/cluster/pact-stub.sh install | tail -n1)"
set -euo pipefail

PACT_STUB_SERVER_VERSION=0.7.1

CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
ROOT="$CACHE/pact-stub-server-$PACT_STUB_SERVER_VERSION"
BIN="$ROOT/bin/pact-stub-server"

install_stub() {
    if [ -x "$BIN" ]; then
        echo "$BIN"
        return 0
    fi
    mkdir -p "$ROOT"
    echo "installing pact-stub-server $PACT_STUB_SERVER_VERSION into $ROOT (a long compile)" >&2
    # A separate target dir so this build never touches the project's; -j1 keeps a 2-core machine usable.
    CARGO_TARGET_DIR="$ROOT/build" cargo install --locked --root "$ROOT" \
        --version "$PACT_STUB_SERVER_VERSION" pact-stub-server >&2
    rm -rf "$ROOT/build"
    [ -x "$BIN" ] || { echo "pact-stub-server was not installed at $BIN" >&2; exit 1; }
    echo "$BIN"
}

cmd="${1:-}"
case "$cmd" in
    install)
        install_stub
        ;;
    path)
        [ -x "$BIN" ] || { echo "pact-stub-server $PACT_STUB_SERVER_VERSION not installed (run: $0 install)" >&2; exit 1; }
        echo "$BIN"
        ;;
    start)
        shift
        port="${1:?usage: $0 start PORT PACT_FILE...}"
        shift
        [ "$#" -ge 1 ] || { echo "usage: $0 start PORT PACT_FILE..." >&2; exit 2; }
        bin="$(install_stub | tail -n1)"
        args=()
        for f in "$@"; do args+=(--file "$f"); done
        # pact-stub-server binds 0.0.0.0 by default in some versions; ask for loopback only.
        exec "$bin" --port "$port" --insecure-tls=false "${args[@]}" 2>/dev/null || exec "$bin" --port "$port" "${args[@]}"
        ;;
    *)
        echo "usage: $0 install | path | start PORT PACT_FILE..." >&2
        exit 2
        ;;
esac
