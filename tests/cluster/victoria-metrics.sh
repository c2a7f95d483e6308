#!/usr/bin/env bash
# Installs VictoriaMetrics, the second Prometheus-compatible backend the provider's live tests run
# against (tests/it/prometheus_live.rs; started per test by tests/peers/prometheus.sh with
# TOLLGATE_METRICS_BACKEND=victoria-metrics): Debian's `victoria-metrics` package (single node),
# when missing. Idempotent: a no-op when the binary is there. Prints its path last. Called by
# tests/run-all.sh.
set -euo pipefail
bin="${TOLLGATE_VICTORIA_METRICS:-/usr/bin/victoria-metrics}"
if [ ! -x "$bin" ]; then
  echo "[victoria-metrics.sh] apt-get install victoria-metrics" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another installer (the peers' build, browser.sh) may hold dpkg's lock: wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends victoria-metrics >/dev/null
  # The package starts a system service on :8428; the tests start their own on free ports.
  if command -v systemctl >/dev/null && systemctl is-active --quiet victoria-metrics 2>/dev/null; then
    systemctl stop victoria-metrics || true
  fi
fi
[ -x "$bin" ] || { echo "victoria-metrics not found at $bin after the install" >&2; exit 1; }
echo "$bin"
