// Runs interop.test.mjs (the official @azure/attestation@1.0.0 client)
// against a real attestd server:
//
//  1. creates a policy-management certificate for an Isolated instance and
//     writes test SGX material with sgxgen (ATTESTD_SGXGEN_BIN, else `go run
//     ./testing/sgxplatform/cmd/sgxgen`): a TEST root, its collateral bundle,
//     quotes and OpenEnclave reports,
//  2. starts `attestd serve` (ATTESTD_BIN, else `go build`) with a config of
//     four instances (default AAD at /, Isolated at /tenants/iso, AAD at
//     /tenants/sgx for the SGX tests, AAD at /tenants/es signing attestation
//     tokens ES256) trusting that root and serving that
//     bundle, on a free loopback port and a fresh data directory,
//  3. mints bearer tokens with `attestd token`,
//  4. runs `node --test` with NODE_EXTRA_CA_CERTS = DATA/tls/cert.pem (Node
//     reads that variable only at start-up, hence the child process),
//  5. stops the server with SIGTERM and requires a clean exit.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { makeCert } from "./certs.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), "attestd-interop-"));
const data = join(work, "data");

let bin = process.env.ATTESTD_BIN;
if (!bin) {
  bin = join(work, "attestd");
  execFileSync("go", ["build", "-o", bin, "./cmd/attestd"], { cwd: join(here, "..", ".."), stdio: "inherit" });
}

const genDir = join(work, "sgxgen");
if (process.env.ATTESTD_SGXGEN_BIN) {
  execFileSync(process.env.ATTESTD_SGXGEN_BIN, ["-out", genDir], { stdio: "inherit" });
} else {
  execFileSync("go", ["run", "./testing/sgxplatform/cmd/sgxgen", "-out", genDir], { cwd: join(here, "..", ".."), stdio: "inherit" });
}

const pm1 = makeCert("attestd interop policy signer 1");
writeFileSync(join(work, "pm1.pem"), pm1.certificate);
writeFileSync(join(work, "pm1.key"), pm1.privateKey);
writeFileSync(
  join(work, "config.json"),
  JSON.stringify({
    instances: [
      { name: "default", mode: "AAD", auth: { dev: true } },
      { name: "iso", prefix: "/tenants/iso", mode: "Isolated", policy_certificates: ["pm1.pem"], auth: { dev: true } },
      { name: "sgx", mode: "AAD", auth: { dev: true } },
      { name: "es", mode: "AAD", token_algorithm: "ES256", auth: { dev: true } },
    ],
    collateral: { type: "bundle", path: "sgxgen/collateral.json" },
    sgx: { roots: ["sgxgen/root.pem"] },
  }),
);

const server = spawn(bin, ["serve", "--config", join(work, "config.json"), "--data", data, "--listen", "127.0.0.1:0"], {
  stdio: ["ignore", "pipe", "pipe"],
});
let serverLog = "";
server.stderr.on("data", (b) => (serverLog += b));
const exited = new Promise((resolve) => server.on("exit", (code, signal) => resolve({ code, signal })));

const base = await new Promise((resolve, reject) => {
  let out = "";
  const timer = setTimeout(() => reject(new Error("attestd did not start within 60s:\n" + serverLog)), 60000);
  server.stdout.on("data", (b) => {
    out += b;
    const m = out.match(/attestd listening on (https:\/\/\S+)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  server.on("exit", (code) => reject(new Error(`attestd exited early (${code}):\n${serverLog}`)));
});

function token(...args) {
  const out = execFileSync(bin, ["token", "--data", data, ...args], { encoding: "utf8" }).trim().split("\n");
  return out[out.length - 1];
}

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
    ATTESTD_ES256_URL: base + "/tenants/es",
  };
  const t = spawn(process.execPath, ["--test", "--test-reporter=spec", join(here, "interop.test.mjs"), join(here, "sgx.test.mjs")], { env, stdio: "inherit" });
  status = await new Promise((resolve) => t.on("exit", (code) => resolve(code ?? 1)));
} finally {
  server.kill("SIGTERM");
  const { code, signal } = await exited;
  if (code !== 0) {
    console.error(`attestd did not shut down cleanly on SIGTERM (code ${code}, signal ${signal}):\n${serverLog}`);
    status = status || 1;
  }
  if (status !== 0) {
    console.error("---- attestd log ----\n" + serverLog);
  }
  rmSync(work, { recursive: true, force: true });
}
process.exit(status);
