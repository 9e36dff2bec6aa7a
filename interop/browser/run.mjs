// Runs playground.test.mjs: the policy playground page driven in headless
// Chromium (Debian's /usr/bin/chromium, through playwright-core) against a
// real attestd server over HTTPS:
//
//  1. writes test SGX material with sgxgen (ATTESTD_SGXGEN_BIN, else `go run
//     ./testing/sgxplatform/cmd/sgxgen`): a TEST root, its collateral and
//     quotes; the root is trusted only because this test's config says so,
//  2. starts `attestd serve` (ATTESTD_BIN, else `go build`) with an AAD
//     instance at the root (dev identity, playground on by default) and one
//     at /tenants/off with "playground": false, on a free loopback port,
//  3. mints a reader and a contributor token with `attestd token`,
//  4. runs `node --test` (NODE_EXTRA_CA_CERTS = the server's self-signed
//     certificate, for the test's own calls),
//  5. stops the server with SIGTERM and requires a clean exit.
//
// Screenshots go to ATTESTD_ARTIFACTS (default interop/browser/artifacts).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const work = mkdtempSync(join(tmpdir(), "attestd-browser-"));
const data = join(work, "data");
const artifacts = resolve(process.env.ATTESTD_ARTIFACTS || join(here, "artifacts"));
mkdirSync(artifacts, { recursive: true });

let bin = process.env.ATTESTD_BIN;
if (!bin) {
  bin = join(work, "attestd");
  execFileSync("go", ["build", "-o", bin, "./cmd/attestd"], { cwd: repo, stdio: "inherit" });
}
const genDir = join(work, "sgxgen");
if (process.env.ATTESTD_SGXGEN_BIN) {
  execFileSync(process.env.ATTESTD_SGXGEN_BIN, ["-out", genDir], { stdio: "inherit" });
} else {
  execFileSync("go", ["run", "./testing/sgxplatform/cmd/sgxgen", "-out", genDir], { cwd: repo, stdio: "inherit" });
}

writeFileSync(
  join(work, "config.json"),
  JSON.stringify({
    instances: [
      { name: "default", mode: "AAD", auth: { dev: true } },
      { name: "off", prefix: "/tenants/off", mode: "AAD", auth: { dev: true }, playground: false },
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
    ATTESTD_TLS_CERT: join(data, "tls", "cert.pem"),
    ATTESTD_URL: base,
    ATTESTD_TOKEN_READER: token("--role", "reader"),
    ATTESTD_TOKEN_CONTRIBUTOR: token("--role", "contributor"),
    ATTESTD_SGXGEN_DIR: genDir,
    ATTESTD_ARTIFACTS: artifacts,
  };
  const t = spawn(process.execPath, ["--test", "--test-reporter=spec", "--test-concurrency=1", join(here, "highlight.test.mjs"), join(here, "playground.test.mjs")], { env, stdio: "inherit" });
  status = await new Promise((resolve) => t.on("exit", (code) => resolve(code ?? 1)));
} finally {
  server.kill("SIGTERM");
  const { code, signal } = await exited;
  if (code !== 0) {
    console.error(`attestd did not shut down cleanly on SIGTERM (code ${code}, signal ${signal}):\n${serverLog}`);
    status = status || 1;
  }
  if (status !== 0) console.error("---- attestd log ----\n" + serverLog);
  rmSync(work, { recursive: true, force: true });
}
process.exit(status);
