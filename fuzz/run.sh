#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for a bounded time each, on its checked-in corpus.
# A crash, a panic, an overflow or a failed invariant fails the run, leaving the input in
# fuzz/artifacts/<target>/. Each target prints its executions and the corpus it ended with.
#
#   bash fuzz/run.sh                      # CI smoke: TOLLGATE_FUZZ_SECONDS (30) per target
#   TOLLGATE_FUZZ_SECONDS=3600 bash fuzz/run.sh decide   # a long run of one target
#
# Needs the nightly toolchain and cargo-fuzz (installed into the cache once, pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${TOLLGATE_FUZZ_SECONDS:-30}"
cache="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
# The instrumented nightly build has flags of its own: a target dir of its own, in the cache, so a
# warm run rebuilds only tollgate.
export CARGO_TARGET_DIR="${TOLLGATE_FUZZ_TARGET_DIR:-$cache/fuzz-target}"
CARGO_FUZZ_VERSION=0.13.2
fuzz_bin="$cache/bin/cargo-fuzz-$CARGO_FUZZ_VERSION"
if [ ! -x "$fuzz_bin" ]; then
  echo "building cargo-fuzz $CARGO_FUZZ_VERSION into $fuzz_bin (once)" >&2
  tmp=$(mktemp -d)
  CARGO_TARGET_DIR="$tmp/target" cargo install --locked --quiet --root "$tmp/root" \
    "cargo-fuzz@$CARGO_FUZZ_VERSION" >&2
  mkdir -p "$cache/bin"
  mv "$tmp/root/bin/cargo-fuzz" "$fuzz_bin"
  rm -rf "$tmp"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^tollgate-fuzz$')
fi
# The corpus grows during a run; CI keeps the checked-in one as it is (a copy is fuzzed).
work=$(mktemp -d /tmp/tollgate-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp -r "fuzz/corpus/$t/." "$work/$t/" 2>/dev/null || true
  log="$work/$t.log"
  if RUSTUP_TOOLCHAIN=nightly "$fuzz_bin" fuzz run --fuzz-dir fuzz "$t" "$work/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=70000 -print_final_stats=1 \
      >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "fuzz $t: ok, ${execs:-?} executions in ${seconds}s, corpus $(ls "$work/$t" | wc -l)"
  else
    echo "fuzz $t: FAILED (input in fuzz/artifacts/$t/)"
    grep -E "panicked|ERROR: libFuzzer|SUMMARY" "$log" | head -5 || tail -20 "$log"
    status=1
  fi
done
exit "$status"
