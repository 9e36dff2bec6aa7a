#!/usr/bin/env bash
# Times attestd's evidence verification against its peers on one machine in
# one run (testing/peers): the SGX DCAP sample of dcap-qvl against
# @phala/dcap-qvl (pure JavaScript, installed here with npm at a pinned
# version into a temporary directory), same quote, collateral and instant;
# SEV-SNP against go-sev-guest and TDX against go-tdx-guest, both called
# in-process on the same report or quote (no network).
# Prints each verifier's TCB status (they must agree) and a table of CPU time
# per verification with ratios against the peer.
#
#   scripts/peers.sh                      # 9 rounds, ~500 ms of CPU per batch
#   scripts/peers.sh -rounds 11 -v        # flags go to testing/peers
#
# Needs Go, Node.js ≥ 18 with npm, and the shared test material
# (ATTESTD_SHARED, default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
DCAPQVL_VERSION=0.3.9   # exact pin: `npm view @phala/dcap-qvl versions`
export ATTESTD_SHARED="${ATTESTD_SHARED:-$(cd .. && pwd)/shared}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/attestd-peers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "installing @phala/dcap-qvl@$DCAPQVL_VERSION into $tmp" >&2
(cd "$tmp" && echo '{"private":true}' > package.json &&
  npm install --no-audit --no-fund --ignore-scripts --save-exact "@phala/dcap-qvl@$DCAPQVL_VERSION" >&2)
got=$(node -p "require('$tmp/node_modules/@phala/dcap-qvl/package.json').version")
if [ "$got" != "$DCAPQVL_VERSION" ]; then
  echo "peers.sh: npm installed @phala/dcap-qvl $got, want $DCAPQVL_VERSION" >&2
  exit 1
fi

go build -o "$tmp/peers" ./testing/peers
"$tmp/peers" -node-modules "$tmp/node_modules" "$@"
