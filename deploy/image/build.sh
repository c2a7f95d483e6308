#!/usr/bin/env bash
# Builds the operator image without pulling anything: the release binary is compiled on this
# machine, deploy/image/rootfs.sh lays out its root filesystem, and buildah builds the
# Containerfile's last stage (FROM scratch) with that filesystem standing in for the `build`
# stage, so this is the same image `podman build -f Containerfile .` makes where pulls work.
#
# Usage: deploy/image/build.sh [--offline] [--push REPOSITORY [--insecure]]
#   --offline     cargo may not touch the network (every crate must be in ~/.cargo already)
#   --push REPO   also push to REPO (e.g. 127.0.0.1:5000/tollgate) with skopeo, tagged and by digest
#   --insecure    plain HTTP / unverified TLS for --push (a loopback registry)
# Environment:
#   TOLLGATE_IMAGE_NAME        local name (default localhost/tollgate); the tag is
#                              <crate version>-<12 hex digits of the commit>[-dirty]
#   TOLLGATE_GIT_COMMIT        the commit, when there is no .git (a source tarball)
#   TOLLGATE_IMAGE_TARGET_DIR  cargo target dir (default $CARGO_TARGET_DIR, else
#                              ~/.cache/tollgate/target, which CI runs reuse)
# Prints the local reference last, or with --push the pushed reference by digest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
offline=() push="" insecure=false
while [ $# -gt 0 ]; do
  case $1 in
    --offline) offline=(--offline) ;;
    --push) push=${2:?--push needs a repository}; shift ;;
    --insecure) insecure=true ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
log() { echo "[image $(date -u +%H:%M:%S)] $*" >&2; }
for tool in buildah strip ldd; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (apt-get install buildah binutils)" >&2; exit 1; }
done
start=$(date +%s)

# The commit names the build: the binary's --version, the revision label and the tag agree.
if [ -n "${TOLLGATE_GIT_COMMIT:-}" ]; then
  commit=$TOLLGATE_GIT_COMMIT
elif commit=$(git rev-parse HEAD 2>/dev/null); then
  # A tree with uncommitted changes is not that commit: say so everywhere.
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then commit+=-dirty; fi
else
  echo "build.sh: no .git here; set TOLLGATE_GIT_COMMIT to the commit these sources are" >&2
  exit 1
fi
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
sha=${commit%-dirty}
short=${sha:0:12}
suffix=$([ "$sha" != "$commit" ] && echo -dirty || true)
version="$crate_version+$short${suffix:+.dirty}"
tag="$crate_version-$short$suffix"
name=${TOLLGATE_IMAGE_NAME:-localhost/tollgate}
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)

target=${TOLLGATE_IMAGE_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}}
log "cargo build --release (target dir $target, commit $commit)"
TOLLGATE_GIT_COMMIT=$commit CARGO_TARGET_DIR=$target \
  cargo build --release --locked "${offline[@]}" --bin tollgate
built=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
SOURCE_DATE_EPOCH=$epoch bash deploy/image/rootfs.sh "$target/release/tollgate" "$work/rootfs"
mkdir "$work/context"
previous=$(buildah images --quiet --no-trunc "$name:$tag" 2>/dev/null || true)
log "buildah bud $name:$tag (Containerfile's last stage, FROM scratch)"
buildah bud --quiet --layers=false --timestamp "$epoch" \
  --build-context "build=$work" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$commit" \
  -f "$repo/Containerfile" -t "$name:$tag" "$work/context" >/dev/null
id=$(buildah images --quiet --no-trunc "$name:$tag")
# Same commit, same files, same timestamps: usually the same image. Otherwise drop the one this
# tag named before, so repeated builds do not pile up (only if nothing else names it).
if [ -n "$previous" ] && [ "$previous" != "$id" ]; then
  buildah rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(podman image inspect --format '{{.Size}}' "$name:$tag" 2>/dev/null || echo "?")
log "built $name:$tag ($id), $size bytes, $(( built - start ))s cargo + $(( $(date +%s) - built ))s image"

if [ -n "$push" ]; then
  tls=()
  $insecure && tls=(--dest-tls-verify=false)
  skopeo copy --quiet "${tls[@]}" --digestfile "$work/digest" \
    "containers-storage:$name:$tag" "docker://$push:$tag"
  log "pushed $push:$tag"
  echo "$push@$(cat "$work/digest")"
else
  echo "$name:$tag"
fi
