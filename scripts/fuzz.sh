#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes for longer than the seed-corpus run
# that `go test ./...` (and CI) does.
#
#   scripts/fuzz.sh            # every fuzz target, 60 s each
#   scripts/fuzz.sh 10m        # every fuzz target, 10 minutes each
#   scripts/fuzz.sh 5m ./policy/...   # only the targets under ./policy
#
# New crashers are written to the package's testdata/fuzz/<Target>/ and
# become part of the seed corpus once committed. Minimising a new input is
# capped at 2 s (FUZZ_MINIMIZE to change it): with Go's default of 60 s the
# targets whose inputs are large (TPM requests, event logs) spent most of a
# short run minimising, showing 0 execs/s for long stretches.
set -euo pipefail
cd "$(dirname "$0")/.."
time_per_target="${1:-60s}"
pkgs="${2:-./...}"
for pkg in $(go list "$pkgs"); do
  # A package that does not build fails the script instead of silently
  # contributing no targets.
  listing=$(go test -list '^Fuzz' "$pkg")
  targets=$(grep '^Fuzz' <<<"$listing" || true)
  for target in $targets; do
    echo "== $pkg $target ($time_per_target)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$time_per_target" -fuzzminimizetime "${FUZZ_MINIMIZE:-2s}"
  done
done
