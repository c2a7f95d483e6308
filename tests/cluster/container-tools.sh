#!/usr/bin/env bash
# Installs what the image tests need, from Debian's packages, when missing: podman (runs the
# image as a kubelet would), buildah (builds it from scratch), skopeo (pushes and inspects),
# docker-registry (the local registry), runc (podman's runtime here; see containers.conf),
# binutils (strip) and ca-certificates (the image's CA bundle). Idempotent: a no-op when all
# are there. Called by build.sh, so every peer test run has them.
set -euo pipefail
need=()
for pair in podman:podman buildah:buildah skopeo:skopeo docker-registry:docker-registry \
            runc:runc strip:binutils unshare:util-linux; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  echo "[container-tools.sh] apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian may start a registry service on 0.0.0.0:5000 where systemd runs; tests start their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true; systemctl disable docker-registry || true
  fi
fi
