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
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { goBinary, sgxgen, startAttestd, nodeTest } from "../lib/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), "attestd-browser-"));
const data = join(work, "data");
const artifacts = resolve(process.env.ATTESTD_ARTIFACTS || join(here, "artifacts"));
mkdirSync(artifacts, { recursive: true });

const bin = goBinary("ATTESTD_BIN", work, "attestd", "./cmd/attestd");
const genDir = sgxgen(work);

const server = await startAttestd({
  bin,
  work,
  data,
  config: {
    instances: [
      { name: "default", mode: "AAD", auth: { dev: true } },
      { name: "off", prefix: "/tenants/off", mode: "AAD", auth: { dev: true }, playground: false },
    ],
    collateral: { type: "bundle", path: "sgxgen/collateral.json" },
    sgx: { roots: ["sgxgen/root.pem"] },
  },
});

let status = 1;
try {
  const env = {
    ...process.env,
    NODE_EXTRA_CA_CERTS: join(data, "tls", "cert.pem"),
    ATTESTD_TLS_CERT: join(data, "tls", "cert.pem"),
    ATTESTD_URL: server.base,
    ATTESTD_TOKEN_READER: server.token("--role", "reader"),
    ATTESTD_TOKEN_CONTRIBUTOR: server.token("--role", "contributor"),
    ATTESTD_SGXGEN_DIR: genDir,
    ATTESTD_ARTIFACTS: artifacts,
  };
  status = await nodeTest(env, [join(here, "highlight.test.mjs"), join(here, "playground.test.mjs")], ["--test-concurrency=1"]);
} finally {
  const unclean = await server.stop();
  if (unclean) {
    console.error(unclean);
    status = status || 1;
  }
  if (status !== 0) console.error("---- attestd log ----\n" + server.log());
  rmSync(work, { recursive: true, force: true });
}
process.exit(status);
