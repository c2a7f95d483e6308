#!/usr/bin/env bash
# Assembles the operator image's root filesystem from a built `tollgate` binary, the same way for
# the Containerfile's build stage and for deploy/image/build.sh:
#   /tollgate                           the binary, symbols stripped
#   the shared libraries `ldd` names    at the paths it names (glibc, libgcc_s, the loader)
#   /etc/ssl/certs/ca-certificates.crt  CA bundle (brokers and Prometheus may be HTTPS)
#   /etc/passwd, /etc/group             root and nonroot (UID/GID 65532), neither with a shell
#   /etc/nsswitch.conf                  hosts: files dns (glibc's resolver, no NSS modules)
# Nothing else: no shell, no package manager, no coreutils.
#
# Usage: rootfs.sh BINARY OUTDIR    (OUTDIR must not exist or be empty)
set -euo pipefail
bin=${1:?usage: rootfs.sh BINARY OUTDIR}
out=${2:?usage: rootfs.sh BINARY OUTDIR}
[ -x "$bin" ] || { echo "rootfs.sh: $bin is not an executable" >&2; exit 1; }
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "rootfs.sh: $out is not empty" >&2; exit 1
fi
mkdir -p "$out/etc/ssl/certs"
strip --strip-all -o "$out/tollgate" "$bin"
chmod 0755 "$out/tollgate"

# Every library ldd resolves ("name => /path (addr)") and the loader ("/path (addr)"); the vDSO
# has no file. A library ldd cannot find fails the build instead of failing at start-up.
ldd "$bin" | while read -r first second third _; do
  case "$first $second" in
    linux-vdso.so*|linux-gate.so*) continue ;;
  esac
  if [ "$second" = "=>" ]; then
    [ "$third" != "not" ] || { echo "rootfs.sh: ldd cannot find $first" >&2; exit 1; }
    lib=$third
  else
    lib=$first
  fi
  case $lib in /*) ;; *) echo "rootfs.sh: unexpected ldd line: $first $second $third" >&2; exit 1 ;; esac
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
  chmod 0755 "$out$lib"
done

ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || { echo "rootfs.sh: $ca missing (install ca-certificates)" >&2; exit 1; }
cp -L "$ca" "$out$ca"
chmod 0644 "$out$ca"
cat > "$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$out/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
echo "hosts: files dns" > "$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
# Reproducible layers: the same binary gives the same files, the same times.
find "$out" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
