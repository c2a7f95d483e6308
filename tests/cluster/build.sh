#!/usr/bin/env bash
# Builds the local control plane's binaries once into a cache folder outside the clone:
#   ${TOLLGATE_CACHE:-$HOME/.cache/tollgate}/bin/<KUBERNETES_VERSION>/
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (one wrapper Go module that repeats
# k8s.io/kubernetes's `replace` lines for its staging modules), kwok, metrics-server and helm
# (`go install`).
# Also installs Debian's prometheus and openssl if missing, and the container tools
# (container-tools.sh). Reuses whatever is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${TOLLGATE_CACHE:-$HOME/.cache/tollgate}
bin=$cache/bin/$KUBERNETES_VERSION
mkdir -p "$bin"
# One build at a time per cache: a second run (another test lane, the demo) waits here and then
# finds everything built, instead of racing the first into the same files.
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  echo "[build.sh] another build holds $cache/.build.lock; waiting for it" >&2
  flock 9
fi
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
export GOWORK=off
log() { echo "[build.sh $(date -u +%H:%M:%S)] $*" >&2; }
start=$(date +%s)

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v prometheus >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts a prometheus service on 0.0.0.0:9090 where systemd runs; we start our own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true; systemctl disable prometheus || true
  fi
fi
# podman, buildah, skopeo, docker-registry for the image tests (tests/install.rs)
bash "$here/container-tools.sh"
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "go toolchain not found (need go >= 1.26)" >&2; exit 1; }

# --- Kubernetes control plane + etcd ------------------------------------------------------------
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kube-controller-manager" ] \
   || [ ! -x "$bin/kube-scheduler" ] || [ ! -x "$bin/etcd" ] || [ ! -x "$bin/kubectl" ]; then
  src=$cache/src/k8s-$KUBERNETES_VERSION
  mkdir -p "$src/etcd"
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, etcd in $src"
  # k8s.io/kubernetes's own go.mod points its staging modules at ./staging/...; a dependent module
  # must replace each with the published v0.<minor>.<patch> of the same release.
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "module tollgate.local/k8sbin"
    echo
    echo "go 1.26.0"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $KUBERNETES_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo ")"
    echo
    echo "replace ("
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
      | awk -v v="$KUBERNETES_STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$src/go.mod"
  cat > "$src/etcd/main.go" <<'GO'
// etcd, built from the go.etcd.io/etcd/server/v3 module (same as the upstream etcd main.go).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl \
      ./etcd)
fi

# --- kwok, helm ----------------------------------------------------------------------------------
if [ ! -x "$bin/kwok" ]; then
  log "building kwok $KWOK_VERSION"
  GOBIN=$bin go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
# metrics-server: the metrics API (metrics.k8s.io) an HorizontalPodAutoscaler reads; it scrapes
# the kubelet resource-metrics endpoints kwok emulates.
if [ ! -x "$bin/metrics-server" ]; then
  log "building metrics-server $METRICS_SERVER_VERSION"
  GOBIN=$bin go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
fi
if [ ! -x "$bin/helm" ]; then
  log "building helm $HELM_VERSION"
  GOBIN=$bin go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
# kwok ships no built-in behaviour: it needs Stage objects. Take the upstream "fast" node and pod
# stages plus the node heartbeat from the same module version.
stages=$bin/kwok-stages.yaml
if [ ! -s "$stages" ]; then
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$kdir/kustomize/stage/$f"
  done > "$stages.tmp" && mv "$stages.tmp" "$stages"
fi
# kwok's emulated kubelet resource metrics (one `/metrics/nodes/<node>/metrics/resource` per
# node, what metrics-server scrapes) and pods' CPU/memory usage read from the pod annotations
# `kwok.x-k8s.io/usage-cpu` / `-memory` (defaults 1m / 1Mi), from the same module version.
kwok_metrics=$bin/kwok-metrics.yaml
if [ ! -s "$kwok_metrics" ]; then
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  for f in metrics/resource/metrics-resource.yaml metrics/usage/usage-from-annotation.yaml; do
    echo "---"; cat "$kdir/kustomize/$f"
  done > "$kwok_metrics.tmp" && mv "$kwok_metrics.tmp" "$kwok_metrics"
fi
# The Gateway API's standard-channel CRDs (HTTPRoute and friends), from the same Go module
# proxy, so the e2e can shift traffic through a real HTTPRoute object.
gwapi=$bin/gateway-api-$GATEWAY_API_VERSION
if [ ! -s "$gwapi/gateway.networking.k8s.io_httproutes.yaml" ]; then
  gdir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  mkdir -p "$gwapi.tmp"
  cp "$gdir"/config/crd/standard/*.yaml "$gwapi.tmp/"
  chmod u+w "$gwapi.tmp"/*.yaml
  rm -rf "$gwapi"; mv "$gwapi.tmp" "$gwapi"
fi
log "binaries ready in $bin ($(( $(date +%s) - start )) s)"
echo "$bin"
