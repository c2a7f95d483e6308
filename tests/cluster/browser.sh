#!/usr/bin/env bash
# Installs the browser the HTML report's check drives (tests/it/report_browser.rs): Debian's
# chromium and chromium-driver (chromedriver), when missing. Idempotent: a no-op when both are
# there. Prints chromedriver's path last. Called by tests/run-all.sh.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "[browser.sh] apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another installer (the peers' build) may hold dpkg's lock: wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v chromedriver
