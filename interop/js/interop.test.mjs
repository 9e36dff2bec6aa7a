// The official @azure/attestation@1.0.0 client against a real attestd
// (started by run.mjs). Every call validates the returned token the way a
// careful caller would: signature against /certs, exp/nbf, and the issuer
// equal to the instance URL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import pkg from "@azure/attestation";
import { makeCert } from "./certs.mjs";

const { AttestationClient, AttestationAdministrationClient, KnownAttestationType } = pkg;

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set: run this file through run.mjs`);
  return v;
};
const URL_DEFAULT = env("ATTESTD_URL");
const URL_ISO = env("ATTESTD_ISO_URL");
const PM1 = { certificate: readFileSync(env("ATTESTD_PM1_CERT"), "utf8"), privateKey: readFileSync(env("ATTESTD_PM1_KEY"), "utf8") };

const credential = (tok) => ({ getToken: async () => ({ token: tok, expiresOnTimestamp: Date.now() + 3600e3 }) });
const validation = (issuer) => ({
  validateToken: true,
  validateExpirationTime: true,
  validateNotBeforeTime: true,
  validateIssuer: true,
  expectedIssuer: issuer,
});
const admin = (url, tok) => new AttestationAdministrationClient(url, credential(tok), { validationOptions: validation(url) });

const sgx = KnownAttestationType.SgxEnclave;
const oe = KnownAttestationType.OpenEnclave;
const PERMIT_ALL = "version=1.0; authorizationrules{=> permit();}; issuancerules{};";

const thumbprint = (pem) => new X509Certificate(pem).fingerprint.replace(/:/g, "").toUpperCase();
const sameCert = (a, b) => assert.equal(new X509Certificate(a).fingerprint256, new X509Certificate(b).fingerprint256);

async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, "RestError", `want RestError, got ${e.name}: ${e.message}`);
    assert.equal(e.statusCode, status, e.message);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

test("AAD: get, set (unsigned), get back exact text, reset", async () => {
  const c = admin(URL_DEFAULT, env("ATTESTD_TOKEN_CONTRIBUTOR"));
  const def = await c.getPolicy(sgx);
  assert.match(def.body, /^version= 1\.1;/);
  assert.equal(def.token.issuer, URL_DEFAULT);

  const text = "version=1.0;\r\nauthorizationrules{=> permit();};\r\nissuancerules{ => issue(type=\"interop\", value=true);};";
  const set = await c.setPolicy(sgx, text);
  assert.equal(set.body.policyResolution, "Updated");
  assert.equal(set.body.policySigner, undefined);
  // x-ms-policy-token-hash = SHA-256 of the exact JWS the client sent.
  assert.equal(set.body.policyTokenHash.length, 32);

  const got = await c.getPolicy(sgx);
  assert.equal(got.body, text);

  const reset = await c.resetPolicy(sgx);
  assert.equal(reset.body.policyResolution, "Removed");
  const after = await c.getPolicy(sgx);
  assert.equal(after.body, def.body);
});

test("AAD: signed set with any certificate, signer reported", async () => {
  const c = admin(URL_DEFAULT, env("ATTESTD_TOKEN_CONTRIBUTOR"));
  const anyone = makeCert("attestd interop AAD signer");
  const set = await c.setPolicy(oe, PERMIT_ALL, anyone);
  assert.equal(set.body.policyResolution, "Updated");
  sameCert(set.body.policySigner.certificates[0], anyone.certificate);
  assert.equal((await c.getPolicy(oe)).body, PERMIT_ALL);
  const reset = await c.resetPolicy(oe, anyone);
  assert.equal(reset.body.policyResolution, "Removed");
  sameCert(reset.body.policySigner.certificates[0], anyone.certificate);
});

test("AAD: no policy-management certificates", async () => {
  const c = admin(URL_DEFAULT, env("ATTESTD_TOKEN_READER"));
  const certs = await c.getPolicyManagementCertificates();
  assert.deepEqual(certs.body, []);
});

test("errors arrive as RestError with attestd's code", async () => {
  const c = admin(URL_DEFAULT, env("ATTESTD_TOKEN_CONTRIBUTOR"));
  await rejectsWith(c.setPolicy(sgx, "version=1.0; authorizationrules{=> permit()};"), 400, "PolicyParsingError");
  const reader = admin(URL_DEFAULT, env("ATTESTD_TOKEN_READER"));
  await rejectsWith(reader.setPolicy(sgx, PERMIT_ALL), 401, "Unauthorized");
  const stranger = admin(URL_DEFAULT, "not-a-token");
  await rejectsWith(stranger.getPolicy(sgx), 401, "Unauthorized");
  // A token for the Isolated instance is not valid on the default one.
  const wrongInstance = admin(URL_DEFAULT, env("ATTESTD_TOKEN_ISO"));
  await rejectsWith(wrongInstance.getPolicy(sgx), 401, "Unauthorized");
  // Attest needs no credential; this build has no verifier or the quote is junk.
  const client = new AttestationClient(URL_DEFAULT);
  await assert.rejects(client.attestSgxEnclave(new Uint8Array([1, 2, 3])), (e) => {
    assert.equal(e.name, "RestError");
    assert.ok(["NotSupported", "InvalidParameter"].includes(e.code), e.code);
    return true;
  });
});

test("signers and OpenID metadata", async () => {
  const client = new AttestationClient(URL_DEFAULT, { validationOptions: validation(URL_DEFAULT) });
  const signers = await client.getAttestationSigners();
  assert.ok(signers.length >= 1);
  assert.ok(signers[0].keyId);
  assert.ok(signers[0].certificates.length >= 1);
  const meta = await client.getOpenIdMetadata();
  assert.equal(meta.issuer, URL_DEFAULT);
  assert.equal(meta.jwks_uri, URL_DEFAULT + "/certs");

  const iso = new AttestationClient(URL_ISO);
  const isoMeta = await iso.getOpenIdMetadata();
  assert.equal(isoMeta.issuer, URL_ISO);
  const isoSigners = await iso.getAttestationSigners();
  assert.notEqual(isoSigners[0].keyId, signers[0].keyId, "each instance has its own signing key");
});

test("Isolated: signed policies and certificate management", async () => {
  const c = admin(URL_ISO, env("ATTESTD_TOKEN_ISO"));
  const certs = await c.getPolicyManagementCertificates();
  assert.equal(certs.body.length, 1);
  sameCert(certs.body[0].certificates[0], PM1.certificate);

  await rejectsWith(c.setPolicy(sgx, PERMIT_ALL), 400, "InvalidOperation");
  const stranger = makeCert("attestd interop unknown signer");
  await rejectsWith(c.setPolicy(sgx, PERMIT_ALL, stranger), 400, "InvalidOperation");

  const set = await c.setPolicy(sgx, PERMIT_ALL, PM1);
  assert.equal(set.body.policyResolution, "Updated");
  sameCert(set.body.policySigner.certificates[0], PM1.certificate);
  assert.equal((await c.getPolicy(sgx)).body, PERMIT_ALL);

  const pm2 = makeCert("attestd interop policy signer 2");
  const added = await c.addPolicyManagementCertificate(pm2.certificate, PM1.privateKey, PM1.certificate);
  assert.equal(added.body.certificateResolution, "IsPresent");
  assert.equal(added.body.certificateThumbprint, thumbprint(pm2.certificate));
  const again = await c.addPolicyManagementCertificate(pm2.certificate, PM1.privateKey, PM1.certificate);
  assert.equal(again.body.certificateResolution, "IsPresent");
  assert.equal((await c.getPolicyManagementCertificates()).body.length, 2);

  const set2 = await c.setPolicy(sgx, "version=1.0; authorizationrules{=> permit();};", pm2);
  sameCert(set2.body.policySigner.certificates[0], pm2.certificate);

  const removed = await c.removePolicyManagementCertificate(pm2.certificate, PM1.privateKey, PM1.certificate);
  assert.equal(removed.body.certificateResolution, "IsAbsent");
  assert.equal(removed.body.certificateThumbprint, thumbprint(pm2.certificate));
  const removedAgain = await c.removePolicyManagementCertificate(pm2.certificate, PM1.privateKey, PM1.certificate);
  assert.equal(removedAgain.body.certificateResolution, "IsAbsent");
  await rejectsWith(c.setPolicy(sgx, PERMIT_ALL, pm2), 400, "InvalidOperation");
  await rejectsWith(c.removePolicyManagementCertificate(PM1.certificate, PM1.privateKey, PM1.certificate), 400, "InvalidOperation");

  const reset = await c.resetPolicy(sgx, PM1);
  assert.equal(reset.body.policyResolution, "Removed");
  assert.match((await c.getPolicy(sgx)).body, /^version= 1\.1;/);
});

test("policy token hash is SHA-256 of the request JWS", async () => {
  const c = admin(URL_DEFAULT, env("ATTESTD_TOKEN_CONTRIBUTOR"));
  const set = await c.setPolicy(KnownAttestationType.Tpm, PERMIT_ALL);
  // The unsigned JWS JS 1.0.0 builds (maa-api.md §1.4).
  const b64u = (s) => Buffer.from(s).toString("base64url");
  const jws = b64u('{"alg":"none"}') + "." + b64u(JSON.stringify({ AttestationPolicy: b64u(PERMIT_ALL) })) + ".";
  assert.deepEqual(Buffer.from(set.body.policyTokenHash), createHash("sha256").update(jws).digest());
  await c.resetPolicy(KnownAttestationType.Tpm);
});
