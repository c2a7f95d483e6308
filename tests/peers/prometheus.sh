#!/usr/bin/env bash
# Start or stop a throwaway Prometheus (Debian's `prometheus` package) for tests, or, with
# TOLLGATE_METRICS_BACKEND=victoria-metrics, a single-node VictoriaMetrics (Debian's
# `victoria-metrics` package, installed by tests/cluster/victoria-metrics.sh) scraping the same
# targets with the same configuration (`-promscrape.config`), answering the same HTTP API.
#
#   tests/peers/prometheus.sh start DIR PORT [SCRAPE_INTERVAL [WEB_CONFIG]]  # prints the pid when ready
#   tests/peers/prometheus.sh stop DIR                    # stops it and removes DIR's data
#   tests/peers/prometheus.sh test [TEST ARGS...]         # installs prometheus if missing, builds demo-app,
#                                                         # runs the prometheus_* modules of tests/it incl. ignored
#
# WEB_CONFIG is a Prometheus web configuration file (TLS, basic auth); readiness is then probed over
# https without checking the certificate or the credentials (any HTTP answer means it is up).
#
# DIR holds everything: prometheus.yml (generated), data/ (TSDB), prometheus.log, prometheus.pid and
# targets/*.json, the file_sd target lists. Write a file there to add scrape targets, e.g.
#
#   [{"targets": ["127.0.30.1:8080"], "labels": {"namespace": "shop", "rollout": "checkout", "track": "canary"}}]
#
# The labels become target labels on every scraped series; they stand in for the pod labels that
# the operator sets and that kubernetes_sd relabelling copies in a cluster (`namespace`, `rollout`,
# `track`). Prometheus binds to 127.0.0.1:PORT only. The binary is $TOLLGATE_PROMETHEUS, else
# /usr/bin/prometheus (apt-get install -y prometheus). Scrape interval defaults to 1s. With
# TOLLGATE_OWNER_PID set, Prometheus is also stopped when that process goes away.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT [SCRAPE_INTERVAL [WEB_CONFIG]] | stop DIR | test [ARGS...]" >&2; exit 2; }

cmd="${1:-}"; dir="${2:-}"
if [ "$cmd" = test ]; then
    shift
    cd "$(dirname "$0")/../.."
    if [ -z "${TOLLGATE_PROMETHEUS:-}" ] && [ ! -x /usr/bin/prometheus ]; then
        echo "installing Debian's prometheus" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
    fi
    bash tests/cluster/victoria-metrics.sh >/dev/null
    cargo build -p demo-app
    modules=()
    for f in tests/it/prometheus_*.rs; do modules+=("$(basename "$f" .rs)::"); done
    exec cargo test -p tollgate --test it -- --include-ignored "${modules[@]}" "$@"
fi
[ -n "$cmd" ] && [ -n "$dir" ] || usage

backend="${TOLLGATE_METRICS_BACKEND:-prometheus}"
case "$cmd" in
start)
    port="${3:-}"; interval="${4:-1s}"; web="${5:-}"
    [ -n "$port" ] || usage
    if [ "$backend" = victoria-metrics ]; then
        bin="${TOLLGATE_VICTORIA_METRICS:-/usr/bin/victoria-metrics}"
        if [ ! -x "$bin" ]; then
            echo "victoria-metrics not found at $bin: bash tests/cluster/victoria-metrics.sh, or set TOLLGATE_VICTORIA_METRICS" >&2
            exit 3
        fi
        if [ -n "$web" ]; then
            echo "a web configuration (TLS, basic auth) is for Prometheus only here" >&2
            exit 2
        fi
    elif [ "$backend" = prometheus ]; then
        bin="${TOLLGATE_PROMETHEUS:-/usr/bin/prometheus}"
        if [ ! -x "$bin" ]; then
            echo "prometheus not found at $bin: apt-get install -y prometheus, or set TOLLGATE_PROMETHEUS" >&2
            exit 3
        fi
    else
        echo "unknown TOLLGATE_METRICS_BACKEND=$backend (prometheus or victoria-metrics)" >&2
        exit 2
    fi
    mkdir -p "$dir/targets" "$dir/data"
    dir="$(cd "$dir" && pwd)"
    # evaluation_interval (rules) and file_sd's refresh_interval are Prometheus' fields, which
    # VictoriaMetrics refuses: its scraper runs no rules, and re-reads the files every
    # -promscrape.fileSDCheckInterval
    eval_line="  evaluation_interval: $interval"
    refresh_line="        refresh_interval: 1s"
    if [ "$backend" != prometheus ]; then eval_line=""; refresh_line=""; fi
    cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: $interval
  scrape_timeout: $interval
$eval_line
scrape_configs:
  - job_name: demo
    file_sd_configs:
      - files: ["$dir/targets/*.json"]
$refresh_line
EOF
    extra=(); probe=(curl -fsS "http://127.0.0.1:$port/-/ready")
    if [ -n "$web" ]; then
        extra=(--web.config.file="$web")
        probe=(sh -c "code=\$(curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:$port/-/ready); [ \"\$code\" != 000 ]")
    fi
    # Own process group, so `stop` can end it and nothing else.
    if [ "$backend" = victoria-metrics ]; then
        # The same scrape configuration; target files re-read every second as Prometheus does;
        # the newest samples visible at once (its default hides the last 30 s) and no response
        # cache (the tests query windows that are still filling).
        probe=(curl -fsS "http://127.0.0.1:$port/health")
        setsid "$bin" \
            -promscrape.config="$dir/prometheus.yml" \
            -promscrape.fileSDCheckInterval=1s \
            -storageDataPath="$dir/data" \
            -retentionPeriod=1d \
            -httpListenAddr="127.0.0.1:$port" \
            -search.latencyOffset=0s \
            -search.disableCache \
            -loggerLevel=WARN \
            >"$dir/prometheus.log" 2>&1 </dev/null &
    else
        setsid "$bin" "${extra[@]}" \
            --config.file="$dir/prometheus.yml" \
            --storage.tsdb.path="$dir/data" \
            --storage.tsdb.retention.time=1h \
            --web.listen-address="127.0.0.1:$port" \
            --log.level=warn \
            >"$dir/prometheus.log" 2>&1 </dev/null &
    fi
    pid=$!
    echo "$pid" >"$dir/prometheus.pid"
    # With TOLLGATE_OWNER_PID (a test process), a watcher stops Prometheus if the owner dies without
    # running `stop` (killed test run).
    if [ -n "${TOLLGATE_OWNER_PID:-}" ]; then
        owner="$TOLLGATE_OWNER_PID"
        setsid sh -c "while kill -0 $owner 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done; kill $pid 2>/dev/null" \
            >/dev/null 2>&1 </dev/null &
    fi
    for _ in $(seq 1 150); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$backend exited during start-up; log:" >&2
            tail -n 20 "$dir/prometheus.log" >&2
            exit 1
        fi
        if "${probe[@]}" >/dev/null 2>&1; then
            echo "$pid"
            exit 0
        fi
        sleep 0.1
    done
    echo "$backend on 127.0.0.1:$port not ready after 15s; log:" >&2
    tail -n 20 "$dir/prometheus.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
stop)
    if [ -f "$dir/prometheus.pid" ]; then
        pid="$(cat "$dir/prometheus.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/prometheus.pid"
    fi
    rm -rf "$dir/data"
    ;;
*)
    usage
    ;;
esac
