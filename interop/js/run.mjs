// Runs interop.test.mjs (the official @azure/attestation@1.0.0 client)
// against a real attestd server:
//
//  1. creates a policy-management certificate for an Isolated instance and
//     writes test SGX material with sgxgen (ATTESTD_SGXGEN_BIN, else `go run
//     ./testing/sgxplatform/cmd/sgxgen`): a TEST root, its collateral bundle,
//     quotes and OpenEnclave reports,
//  2. starts `attestd serve` (ATTESTD_BIN, else `go build`) with a config of
//     instances (default AAD at /, Isolated at /tenants/iso, AAD at
//     /tenants/sgx for the SGX tests, AAD at /tenants/es signing attestation
//     tokens ES256) trusting that root and serving that
//     bundle, on a free loopback port and a fresh data directory,
//  3. mints bearer tokens with `attestd token`,
//  4. runs `node --test` with NODE_EXTRA_CA_CERTS = DATA/tls/cert.pem (Node
//     reads that variable only at start-up, hence the child process),
//  5. stops the server with SIGTERM and requires a clean exit.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { makeCert } from "./certs.mjs";
import { goBinary, sgxgen, listening, startAttestd, nodeTest } from "../lib/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), "attestd-interop-"));
const data = join(work, "data");

const bin = goBinary("ATTESTD_BIN", work, "attestd", "./cmd/attestd");
const genDir = sgxgen(work);

// The TPM side: a real swtpm behind testing/swtpm/cmd/tpmhelper, whose AK
// the "tpm" block trusts (tpm.test.mjs, interop/python/tpm_attest.py).
const helperBin = goBinary("ATTESTD_TPMHELPER_BIN", work, "tpmhelper", "./testing/swtpm/cmd/tpmhelper");
const helper = spawn(helperBin, ["-ak-out", join(work, "ak.pem")], { stdio: ["pipe", "pipe", "pipe"] });
let helperLog = "";
helper.stderr.on("data", (b) => (helperLog += b));
const helperURL = await listening(helper, "tpmhelper", /listening (http:\/\/\S+)/, () => helperLog);

const pm1 = makeCert("attestd interop policy signer 1");
writeFileSync(join(work, "pm1.pem"), pm1.certificate);
writeFileSync(join(work, "pm1.key"), pm1.privateKey);
const server = await startAttestd({
  bin,
  work,
  data,
  config: {
    instances: [
      { name: "default", mode: "AAD", auth: { dev: true } },
      { name: "iso", prefix: "/tenants/iso", mode: "Isolated", policy_certificates: ["pm1.pem"], auth: { dev: true } },
      { name: "sgx", mode: "AAD", auth: { dev: true } },
      { name: "tpm", mode: "AAD", auth: { dev: true } },
      { name: "es", mode: "AAD", token_algorithm: "ES256", auth: { dev: true } },
      { name: "rot", mode: "AAD", auth: { dev: true } },
    ],
    tpm: { trusted_aks: ["ak.pem"] },
    collateral: { type: "bundle", path: "sgxgen/collateral.json" },
    sgx: { roots: ["sgxgen/root.pem"] },
  },
});
const { base, token } = server;

let status = 1;
try {
  const env = {
    ...process.env,
    NODE_EXTRA_CA_CERTS: join(data, "tls", "cert.pem"),
    ATTESTD_URL: base,
    ATTESTD_ISO_URL: base + "/tenants/iso",
    ATTESTD_TOKEN_CONTRIBUTOR: token("--role", "contributor"),
    ATTESTD_TOKEN_READER: token("--role", "reader"),
    ATTESTD_TOKEN_ISO: token("--role", "contributor", "--instance", "iso"),
    ATTESTD_PM1_CERT: join(work, "pm1.pem"),
    ATTESTD_PM1_KEY: join(work, "pm1.key"),
    ATTESTD_SGX_URL: base + "/tenants/sgx",
    ATTESTD_TOKEN_SGX: token("--role", "contributor", "--instance", "sgx"),
    ATTESTD_SGXGEN_DIR: genDir,
    ATTESTD_TPM_URL: base + "/tenants/tpm",
    ATTESTD_TOKEN_TPM: token("--role", "contributor", "--instance", "tpm"),
    ATTESTD_TPMHELPER_URL: helperURL,
    ATTESTD_ES256_URL: base + "/tenants/es",
    ATTESTD_ROT_URL: base + "/tenants/rot",
    ATTESTD_BIN: bin,
    ATTESTD_DATA: data,
    ATTESTD_PID: String(server.pid),
  };
  status = await nodeTest(env, [join(here, "interop.test.mjs"), join(here, "sgx.test.mjs"), join(here, "tpm.test.mjs"), join(here, "rotation.test.mjs")]);
  if (status === 0) {
    status = python(env);
  }
} finally {
  helper.stdin.end(); // tpmhelper stops swtpm and exits on EOF
  const unclean = await server.stop();
  if (unclean) {
    console.error(unclean);
    status = status || 1;
  }
  if (status !== 0) {
    console.error("---- attestd log ----\n" + server.log());
  }
  rmSync(work, { recursive: true, force: true });
}
process.exit(status);

// python runs interop/python/tpm_attest.py and sdk_ops.py (the official Python SDK,
// Debian's python3-azure, on /usr/bin/python3) against the same server.
// Without the SDK it is skipped, except under CI=true where .ci/run
// installs it.
function python(env) {
  const py = "/usr/bin/python3";
  const probe = spawnSync(py, ["-c", "import azure.security.attestation"], { encoding: "utf8" });
  if (probe.status !== 0) {
    if (process.env.CI) {
      console.error("python interop: /usr/bin/python3 lacks azure.security.attestation; CI must install python3-azure\n" + (probe.stderr || probe.error));
      return 1;
    }
    console.log("# SKIP python interop: /usr/bin/python3 lacks azure.security.attestation (apt-get install python3-azure)");
    return 0;
  }
  for (const script of ["tpm_attest.py", "sdk_ops.py"]) {
    const r = spawnSync(py, [join(here, "..", "python", script)], {
      env: { ...env, REQUESTS_CA_BUNDLE: env.NODE_EXTRA_CA_CERTS, SSL_CERT_FILE: env.NODE_EXTRA_CA_CERTS },
      stdio: "inherit",
    });
    if (r.status !== 0) return r.status ?? 1;
  }
  return 0;
}
