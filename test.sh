#!/usr/bin/env bash
# Runs every attestd test: the Go tests, then the interop tests of the official
# @azure/attestation@1.0.0 npm client (and the Python SDK, where installed)
# against a real attestd binary, then the playground's browser tests.
# Needs Go and Node.js (>= 18) with npm; installs the npm packages pinned in
# interop/js/package-lock.json on first use.
set -euo pipefail
cd "$(dirname "$0")"

echo "== go vet ./..."
go vet ./...
echo "== go test ./..."
go test ./...
echo "== PKCS#11 signing keys (cgo, -tags pkcs11) against SoftHSM2"
go vet -tags pkcs11 ./token/pkcs11keys/ ./cmd/attestd/
go test -tags pkcs11 ./token/pkcs11keys/
go test -tags pkcs11 -run PKCS11 ./cmd/attestd/

echo "== interop: @azure/attestation@1.0.0 against attestd"
bin_dir="$(mktemp -d)"
trap 'rm -rf "$bin_dir"' EXIT
go build -o "$bin_dir/attestd" ./cmd/attestd
# Test SGX material (a TEST root, its collateral, quotes, OE reports) for the
# SgxEnclave/OpenEnclave interop tests; never part of the attestd binary.
go build -o "$bin_dir/sgxgen" ./testing/sgxplatform/cmd/sgxgen
# The software-TPM side of the Tpm interop tests (npm and Python SDKs).
go build -o "$bin_dir/tpmhelper" ./testing/swtpm/cmd/tpmhelper
if [ ! -d interop/js/node_modules/@azure/attestation ]; then
  (cd interop/js && npm ci --no-audit --no-fund)
fi
ATTESTD_BIN="$bin_dir/attestd" ATTESTD_SGXGEN_BIN="$bin_dir/sgxgen" ATTESTD_TPMHELPER_BIN="$bin_dir/tpmhelper" node interop/js/run.mjs

# The policy playground in headless Chromium (Debian's /usr/bin/chromium or
# ATTESTD_CHROMIUM, driven by playwright-core): skipped with a message when
# there is no Chromium, a failure under CI=true (.ci/run installs it).
echo "== browser: the policy playground in headless Chromium against attestd"
if [ ! -d interop/browser/node_modules/playwright-core ]; then
  (cd interop/browser && npm ci --no-audit --no-fund)
fi
ATTESTD_BIN="$bin_dir/attestd" ATTESTD_SGXGEN_BIN="$bin_dir/sgxgen" node interop/browser/run.mjs
echo "== all tests passed"
