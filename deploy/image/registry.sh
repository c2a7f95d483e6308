#!/usr/bin/env bash
# A local image registry for tests and the demo: Debian's `docker-registry` (the CNCF
# distribution registry), plain HTTP on a loopback address, storage in a folder of its own.
#
# Usage:
#   registry.sh serve DIR ADDR   run in the foreground (config and blobs in DIR), e.g. 127.0.0.1:5000
#   registry.sh start [ADDR]     run in the background (default 127.0.0.1:5000), storage and pid in
#                                ${TOLLGATE_CACHE:-~/.cache/tollgate}/registry
#   registry.sh stop             stop the one `start` started
# Push to it with `deploy/image/build.sh --push ADDR/tollgate --insecure`.
set -euo pipefail
command -v docker-registry >/dev/null || {
  echo "registry.sh: docker-registry not found (apt-get install docker-registry)" >&2; exit 1; }

config() { # dir addr
  mkdir -p "$1/data"
  case $2 in 127.*|localhost:*|\[::1\]:*) ;; *) echo "registry.sh: $2 is not a loopback address" >&2; exit 2 ;; esac
  cat > "$1/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $1/data
  delete:
    enabled: true
http:
  addr: $2
  secret: $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
YAML
}

cache=${TOLLGATE_CACHE:-$HOME/.cache/tollgate}/registry
case ${1:-} in
  serve)
    dir=${2:?usage: registry.sh serve DIR ADDR}; addr=${3:?usage: registry.sh serve DIR ADDR}
    config "$dir" "$addr"
    exec docker-registry serve "$dir/config.yml"
    ;;
  start)
    addr=${2:-127.0.0.1:5000}
    if [ -f "$cache/pid" ] && kill -0 "$(cat "$cache/pid")" 2>/dev/null; then
      echo "registry.sh: already running (pid $(cat "$cache/pid"))" >&2; exit 0
    fi
    config "$cache" "$addr"
    nohup docker-registry serve "$cache/config.yml" >"$cache/registry.log" 2>&1 &
    echo $! > "$cache/pid"
    for _ in $(seq 50); do
      curl -sf "http://$addr/v2/" >/dev/null && { echo "registry on http://$addr (pid $(cat "$cache/pid"))" >&2; exit 0; }
      sleep 0.2
    done
    echo "registry.sh: no answer on $addr; see $cache/registry.log" >&2; exit 1
    ;;
  stop)
    [ -f "$cache/pid" ] || { echo "registry.sh: not started" >&2; exit 0; }
    pid=$(cat "$cache/pid")
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q docker-registry; then kill "$pid"; fi
    rm -f "$cache/pid"
    ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
