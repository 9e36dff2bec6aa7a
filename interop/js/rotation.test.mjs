// Issue 15: a long-lived @azure/attestation client keeps the /certs it
// fetched first for its whole life (AttestationAdministrationClient
// caches its signers). attestd always publishes a standby key beside the
// active one and a rotation promotes the standby, so a client created
// before a rotation validates tokens signed after it. The rotation runs on
// the "rot" instance, so the other test files (run in parallel) are not
// affected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import pkg from "@azure/attestation";

const { AttestationAdministrationClient, KnownAttestationType } = pkg;

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set: run this file through run.mjs`);
  return v;
};
const URL_ROT = env("ATTESTD_ROT_URL");
const BIN = env("ATTESTD_BIN");
const DATA = env("ATTESTD_DATA");
const PID = Number(env("ATTESTD_PID"));

const credential = (tok) => ({ getToken: async () => ({ token: tok, expiresOnTimestamp: Date.now() + 3600e3 }) });
const attestd = (...args) => execFileSync(BIN, args, { encoding: "utf8" });
const reader = () => attestd("token", "--data", DATA, "--role", "reader", "--instance", "rot").trim().split("\n").pop();
const certs = async () => (await (await fetch(URL_ROT + "/certs")).json()).keys.map((k) => k.kid);

test("a client created before a rotation validates tokens signed after it", async () => {
  const client = new AttestationAdministrationClient(URL_ROT, credential(reader()), {
    validationOptions: { validateToken: true, validateExpirationTime: true, validateIssuer: true, expectedIssuer: URL_ROT },
  });
  const before = await client.getPolicy(KnownAttestationType.SgxEnclave); // fetches and caches /certs
  const [active, standby] = await certs();
  assert.equal(before.token.keyId, active);
  assert.ok(standby, "no standby key published beside the active one");

  const out = attestd("keys", "rotate", "--data", DATA, "--instance", "rot", "--key-prepublish", "3s");
  const m = out.match(/^(\S{44})\s+pending\s+\S+\s+(\S+)/m);
  assert.ok(m, "rotate output lists no pending key:\n" + out);
  assert.equal(m[1], standby, "the rotation must promote the standby key clients already hold");
  process.kill(PID, "SIGHUP"); // SQLite has no notifications: reread now, not at the next interval
  // Wait for the activation (the listing is cut to seconds), then ask the
  // same client again.
  const activate = Date.parse(m[2]) + 1000;
  await new Promise((r) => setTimeout(r, Math.max(0, activate - Date.now())));
  let after;
  for (let i = 0; i < 100; i++) {
    after = await client.getPolicy(KnownAttestationType.SgxEnclave);
    if (after.token.keyId === standby) break;
    await new Promise((r) => setTimeout(r, 100)); // the SIGHUP reload may still be running
  }
  assert.equal(after.token.keyId, standby, "tokens are not signed by the promoted key");
  assert.match(after.body, /^version=/);
  const now = await certs();
  assert.equal(now[0], standby);
  assert.ok(now.includes(active), "the previous key left /certs before its tokens expired");
  assert.equal(now.length, 3, "a new standby is published: " + now);
});
