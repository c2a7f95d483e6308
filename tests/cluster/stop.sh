#!/usr/bin/env bash
# Stops a cluster started by start.sh: kills only the processes it recorded (and the demo-app
# processes the pod runner recorded), then removes its temp dir.
# Usage: stop.sh <env file | cluster dir>   (default: $TOLLGATE_TEST_ENV)
set -uo pipefail
arg=${1:-${TOLLGATE_TEST_ENV:-}}
[ -n "$arg" ] || { echo "usage: stop.sh <env file | cluster dir>" >&2; exit 2; }
if [ -f "$arg" ]; then dir=$(dirname "$arg"); else dir=$arg; fi
[ -d "$dir" ] || { echo "stop.sh: $dir: no such cluster dir" >&2; exit 0; }
if [ ! -f "$dir/pids" ]; then
  # start.sh never got to start anything: only an empty dir may be removed.
  rmdir "$dir" 2>/dev/null || { echo "stop.sh: $dir has no pids file; not removing it" >&2; exit 1; }
  exit 0
fi

# "pid name" lines; a pid is signalled only while its command line still names that binary.
records() {
  cat "$dir/pids"
  if [ -d "$dir/logs/pods" ]; then
    for f in "$dir"/logs/pods/*.pid; do [ -f "$f" ] && echo "$(cat "$f") demo-app"; done
  fi
}
alive() { # pid name (never this process: the watchdog execs into stop.sh)
  [ "$1" != "$$" ] || return 1
  { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null | grep -q -- "$2"
}
signal_all() {
  records | while read -r pid name; do
    [ -n "$pid" ] && alive "$pid" "$name" && kill "-$1" "$pid" 2>/dev/null
  done
  return 0
}
# TERM to every recorded process at once, KILL after 5 s to whatever is left.
signal_all TERM
for _ in $(seq 50); do
  left=$(records | while read -r pid name; do alive "$pid" "$name" && echo "$pid"; done)
  [ -z "$left" ] && break
  sleep 0.1
done
signal_all KILL
sleep 0.2
rm -rf "$dir"
echo "stopped and removed $dir" >&2
