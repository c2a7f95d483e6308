#!/usr/bin/env bash
# pact-stub.sh: install (once) and run pact-stub-server, the Pact Broker stand-in for tollgate's tests.
#
#   tests/cluster/pact-stub.sh install
#       Installs pact-stub-server $PACT_STUB_SERVER_VERSION from crates.io with
#       `cargo install --locked --root $CACHE/pact-stub-server-<ver>`; reused when already present.
#       Prints the binary's path as its last line of stdout.
#   tests/cluster/pact-stub.sh path
#       Prints the binary's path if installed; exits 1 otherwise.
#   tests/cluster/pact-stub.sh start PORT PACT_FILE... [-- EXTRA_STUB_ARGS...]
#       Installs if needed, then serves the pact files on 127.0.0.1:PORT in the foreground until
#       killed (SIGTERM/SIGINT). Extra arguments go to pact-stub-server, e.g.
#       `-- --provider-state-header-name X-Provider-State`.
#
# pact-stub-server always binds 0.0.0.0 (no option to change it). So that nothing listens beyond
# loopback, `start` runs it inside a private network namespace (unshare --net; needs root or user
# namespaces) where only lo exists, and bridges 127.0.0.1:PORT on the host to it through a Unix
# socket (python3, standard library only).
#
# The cache folder is ${TOLLGATE_CACHE:-$HOME/.cache/tollgate}. The Rust tests find the binary
# through TOLLGATE_PACT_STUB_SERVER:
#   export TOLLGATE_PACT_STUB_SERVER="$(tests/cluster/pact-stub.sh install | tail -n1)"
set -euo pipefail

# The pin lives with every other peer's, in versions.env.
# shellcheck source=versions.env
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/versions.env"

CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
ROOT="$CACHE/pact-stub-server-$PACT_STUB_SERVER_VERSION"
BIN="$ROOT/bin/pact-stub-server"
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

install_stub() {
    if [ -x "$BIN" ]; then
        echo "$BIN"
        return 0
    fi
    mkdir -p "$ROOT"
    echo "installing pact-stub-server $PACT_STUB_SERVER_VERSION into $ROOT (a long compile)" >&2
    # A separate target dir so this build never touches the project's.
    CARGO_TARGET_DIR="$ROOT/build" cargo install --locked --root "$ROOT" \
        --version "$PACT_STUB_SERVER_VERSION" pact-stub-server >&2
    rm -rf "$ROOT/build"
    [ -x "$BIN" ] || { echo "pact-stub-server was not installed at $BIN" >&2; exit 1; }
    echo "$BIN"
}

write_bridge() {
    cat > "$1" <<'PY'
# bridge.py MODE SOCKET PORT: copy bytes between a TCP port on 127.0.0.1 and a Unix socket.
#   tcp-to-unix: listen on 127.0.0.1:PORT, connect to SOCKET
#   unix-to-tcp: listen on SOCKET, connect to 127.0.0.1:PORT
import asyncio, sys

mode, sock, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass

async def handle(reader, writer):
    try:
        if mode == "unix-to-tcp":
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        else:
            r2, w2 = await asyncio.open_unix_connection(sock)
    except Exception:
        writer.close()
        return
    await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

async def main():
    if mode == "unix-to-tcp":
        server = await asyncio.start_unix_server(handle, path=sock)
    else:
        server = await asyncio.start_server(handle, host="127.0.0.1", port=port)
    async with server:
        await server.serve_forever()

asyncio.run(main())
PY
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
        port="${1:?usage: $0 start PORT PACT_FILE... [-- EXTRA_ARGS...]}"
        shift
        files=()
        while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do files+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift; done
        [ "${1:-}" = "--" ] && shift
        [ "${#files[@]}" -ge 1 ] || { echo "usage: $0 start PORT PACT_FILE... [-- EXTRA_ARGS...]" >&2; exit 2; }
        bin="$(install_stub | tail -n1)"
        work="$(mktemp -d "${TMPDIR:-/tmp}/pact-stub.XXXXXX")"
        write_bridge "$work/bridge.py"
        args=(--port "$port" --loglevel warn)
        for f in "${files[@]}"; do args+=(--file "$f"); done
        args+=("$@")
        # Inside: loopback up, the stub, and the Unix-socket side of the bridge.
        unshare --net -- bash -c '
            set -e
            ip link set lo up
            work=$1; port=$2; shift 2
            "$@" &
            stub=$!
            # The socket appears only once the stub accepts connections: the outer side waits
            # for the socket, so a client that reaches the outer port never finds the stub not
            # yet listening (which it would see as a connection closed without an answer).
            # A probe that the kernel connected to itself (its source port equal to $port, which
            # comes from the ephemeral range) proves nothing: it is not counted.
            for _ in $(seq 1 600); do
                python3 -c "import socket,sys; s=socket.create_connection((\"127.0.0.1\",int(sys.argv[1])),1); sys.exit(s.getsockname()==s.getpeername())" "$port" 2>/dev/null && break
                kill -0 "$stub" 2>/dev/null || exit 1
                sleep 0.05
            done
            python3 "$work/bridge.py" unix-to-tcp "$work/stub.sock" "$port" &
            bridge=$!
            trap "kill $stub $bridge 2>/dev/null" EXIT
            trap "exit 0" TERM INT
            wait -n
        ' inner "$work" "$port" "$bin" "${args[@]}" &
        inner=$!
        cleanup() { kill "$inner" 2>/dev/null || true; wait "$inner" 2>/dev/null || true; rm -rf "$work"; }
        trap cleanup EXIT
        trap 'exit 0' TERM INT
        for _ in $(seq 1 700); do [ -S "$work/stub.sock" ] && break; sleep 0.05; done
        [ -S "$work/stub.sock" ] || { echo "pact-stub-server did not come up" >&2; exit 1; }
        echo "pact-stub-server serving ${files[*]} on http://127.0.0.1:$port/" >&2
        # In the background and waited for, so SIGTERM/SIGINT are handled at once.
        python3 "$work/bridge.py" tcp-to-unix "$work/stub.sock" "$port" &
        outer=$!
        cleanup() { kill "$outer" "$inner" 2>/dev/null || true; wait "$inner" 2>/dev/null || true; rm -rf "$work"; }
        wait "$outer"
        ;;
    *)
        echo "usage: $0 install | path | start PORT PACT_FILE... [-- EXTRA_ARGS...]" >&2
        exit 2
        ;;
esac
