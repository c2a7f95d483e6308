#!/usr/bin/env bash
# Builds the Argo Rollouts controller (the scale bench's comparison controller, issue 20) from its
# Go module into a cache folder outside the clone, once per version:
#   ${TOLLGATE_CACHE:-$HOME/.cache/tollgate}/argo-rollouts-<version>/{rollouts-controller,crds/}
# and prints that folder. The facts this relies on are in tests/cluster/argo-rollouts/SOURCE.md.
#   --cached-only   print the folder if it is complete, else exit 3 without building (the CI
#                   smoke uses this: it must not pay for a cold 5-9 minute Go build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${TOLLGATE_CACHE:-$HOME/.cache/tollgate}
v=$ARGO_ROLLOUTS_VERSION
out=$cache/argo-rollouts-$v
ready() { [ -x "$out/rollouts-controller" ] && [ -s "$out/crds/rollout-crd.yaml" ]; }
if [ "${1:-}" = --cached-only ]; then
  ready && { echo "$out"; exit 0; }
  echo "[argo-rollouts.sh] $out is not built (run tests/cluster/argo-rollouts.sh)" >&2
  exit 3
fi
mkdir -p "$cache"
# One build at a time per cache (1.8 GB peak memory): a second caller waits and finds it built.
exec 9>"$cache/.argo-rollouts.lock"
if ! flock -n 9; then
  echo "[argo-rollouts.sh] another build holds $cache/.argo-rollouts.lock; waiting for it" >&2
  flock 9
fi
if ready; then echo "$out"; exit 0; fi
log() { echo "[argo-rollouts.sh $(date -u +%H:%M:%S)] $*" >&2; }
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "go toolchain not found" >&2; exit 1; }
start=$(date +%s)
# The module's go.mod asks for a newer Go than the machine's (whose go.env says
# GOTOOLCHAIN=local): name the toolchain so the go command fetches it from the module proxy.
export GOTOOLCHAIN=$ARGO_ROLLOUTS_GOTOOLCHAIN
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
src=$cache/src/argo-rollouts-$v
rm -rf "$src"; mkdir -p "$src"
log "go mod download github.com/argoproj/argo-rollouts@$v"
modjson=$(cd "$src" && go mod download -json "github.com/argoproj/argo-rollouts@$v")
gomod=$(printf '%s\n' "$modjson" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
moddir=$(printf '%s\n' "$modjson" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[ -s "$gomod" ] && [ -d "$moddir/manifests/crds" ] || { echo "module download gave no go.mod / manifests/crds" >&2; exit 1; }
goversion=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
# `go install module/cmd@version` refuses a module with `replace` lines (it pins Kubernetes'
# staging modules): a wrapper module repeats them verbatim and names the command as a tool.
{
  echo "module tollgate.local/argorollouts"
  echo
  echo "go $goversion"
  echo
  awk '/^replace \($/{p=1} p{print} p&&/^\)$/{p=0}' "$gomod"
} > "$src/go.mod"
grep -q '=>' "$src/go.mod" || { echo "no replace block copied from $gomod" >&2; exit 1; }
log "resolving the wrapper module ($(grep -c '=>' "$src/go.mod") replace lines)"
(cd "$src" && go get -tool "github.com/argoproj/argo-rollouts/cmd/rollouts-controller@$v")
log "building rollouts-controller $v (cold: 5-9 minutes, 1.8 GB)"
tmp=$out.tmp
rm -rf "$tmp"; mkdir -p "$tmp/crds"
# As upstream's Makefile: without the -X the controller reports v99.99.99+unknown.
(cd "$src" && go build -ldflags "-s -w -X github.com/argoproj/argo-rollouts/utils/version.version=${v#v}" \
   -o "$tmp/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller)
cp "$moddir"/manifests/crds/*-crd.yaml "$tmp/crds/"  # the CRDs, not the kustomization.yaml
chmod u+w "$tmp/crds"/*.yaml
rm -rf "$out"; mv "$tmp" "$out"
log "ready in $out ($(( $(date +%s) - start )) s)"
echo "$out"
