#!/usr/bin/env bash
# test-totals.sh LOG...: adds up the `test result:` lines cargo test printed into LOG files (one per
# test binary and doc-test run) and prints `N passed, N failed, N ignored`, the totals of the run.
set -euo pipefail
cat "$@" | awk '
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/)  passed  += $i
      if ($(i+1) ~ /^failed/)  failed  += $i
      if ($(i+1) ~ /^ignored/) ignored += $i
    }
  }
  END { printf "%d passed, %d failed, %d ignored\n", passed, failed, ignored }'
