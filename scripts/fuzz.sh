#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes for longer than the seed-corpus run
# that `go test ./...` (and CI) does.
#
#   scripts/fuzz.sh            # every fuzz target, 60 s each
#   scripts/fuzz.sh 10m        # every fuzz target, 10 minutes each
#   scripts/fuzz.sh 5m ./policy/...   # only the targets under ./policy
#
# New crashers are written to the package's testdata/fuzz/<Target>/ and
# become part of the seed corpus once committed.
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
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$time_per_target"
  done
done
