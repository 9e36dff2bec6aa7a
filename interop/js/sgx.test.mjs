// SgxEnclave and OpenEnclave attestation with the official
// @azure/attestation@1.0.0 client against a real attestd (started by
// run.mjs) whose configuration trusts the TEST root written by
// testing/sgxplatform/cmd/sgxgen and serves its collateral bundle. The
// tests use their own instance (/tenants/sgx), so policy changes here never
// race with interop.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "@azure/attestation";

const { AttestationClient, AttestationAdministrationClient, KnownAttestationType } = pkg;

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set: run this file through run.mjs`);
  return v;
};
const URL_SGX = env("ATTESTD_SGX_URL");
const GEN = env("ATTESTD_SGXGEN_DIR");
const gen = (name) => readFileSync(join(GEN, name));
const manifest = JSON.parse(gen("manifest.json"));

const validation = {
  validateToken: true,
  validateExpirationTime: true,
  validateNotBeforeTime: true,
  validateIssuer: true,
  expectedIssuer: URL_SGX,
};
const client = new AttestationClient(URL_SGX, { validationOptions: validation });
const credential = (tok) => ({ getToken: async () => ({ token: tok, expiresOnTimestamp: Date.now() + 3600e3 }) });

const runtimeBin = gen("runtime.bin");
const runtimeJSON = gen("runtime.json");
const b64u = (b) => Buffer.from(b).toString("base64url");

// The enclave identity sgxgen minted, as the client surfaces it.
function assertEnclave(result) {
  const body = result.body;
  assert.equal(body.issuer, URL_SGX);
  assert.equal(body.mrEnclave, manifest.mrenclave);
  assert.equal(body.mrSigner, manifest.mrsigner);
  assert.equal(body.productId, manifest.product_id);
  assert.equal(body.svn, manifest.svn);
  assert.equal(body.isDebuggable, manifest.debug);
  assert.equal(body.verifierType, "sgx");
  assert.equal(body.version, "1.0");
  assert.equal(body.policyHash.length > 0, true);
  const claims = result.token.getBody();
  assert.equal(claims["x-ms-sgx-mrenclave"], manifest.mrenclave);
  assert.equal(claims["x-ms-sgx-mrsigner"], manifest.mrsigner);
  assert.equal(claims["x-ms-sgx-tcb-status"], "UpToDate");
  assert.equal(claims["x-ms-sgx-verified-at"], undefined, "verification is at now: not marked");
  assert.equal(claims["x-ms-sgx-collateral-grace-used"], undefined);
  assert.equal(claims["x-ms-sgx-collateral"].quotehash.length, 64);
  assert.equal(body.sgxCollateral.tcbinfohash, claims["x-ms-sgx-collateral"].tcbinfohash);
  return claims;
}

// The default SGX policy's issuance rules (sgx-mrenclave, is-debuggable, …)
// appear under x-ms-policy and, as with MAA, at the top level.
function assertDefaultPolicyClaims(result) {
  const p = result.body.policyClaims;
  assert.equal(p["sgx-mrenclave"], manifest.mrenclave);
  assert.equal(p["sgx-mrsigner"], manifest.mrsigner);
  assert.equal(p["is-debuggable"], manifest.debug);
  assert.equal(p["product-id"], manifest.product_id);
  assert.equal(p["svn"], manifest.svn);
  assert.equal(p["tee"], "sgx");
  assert.equal(result.token.getBody()["sgx-mrenclave"], manifest.mrenclave);
}

async function rejectsWith(promise, status, code, messagePart) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, "RestError", `want RestError, got ${e.name}: ${e.message}`);
    assert.equal(e.statusCode, status, e.message);
    assert.equal(e.code, code, e.message);
    if (messagePart) assert.match(e.message, messagePart);
    return true;
  });
}

test("attestSgxEnclave: quote v3 with binary runtime data, default policy", async () => {
  const r = await client.attestSgxEnclave(gen("sgx-quote-v3.bin"), { runTimeData: runtimeBin });
  const claims = assertEnclave(r);
  assertDefaultPolicyClaims(r);
  assert.deepEqual(Buffer.from(r.body.enclaveHeldData), runtimeBin);
  assert.equal(claims["x-ms-sgx-ehd"], b64u(runtimeBin));
  assert.equal(claims["x-ms-sgx-report-data"], manifest.report_data["sgx-quote-v3.bin"]);
  assert.equal(r.token.algorithm, "RS256");
});

test("attestSgxEnclave: quote v4 with JSON runtime data", async () => {
  const r = await client.attestSgxEnclave(gen("sgx-quote-v4.bin"), { runTimeJson: runtimeJSON });
  assertEnclave(r);
  assert.deepEqual(r.body.runTimeClaims, JSON.parse(runtimeJSON));
  assert.equal(r.body.enclaveHeldData, undefined);
});

test("attestSgxEnclave: without runtime data", async () => {
  const r = await client.attestSgxEnclave(gen("sgx-quote-v3.bin"));
  assertEnclave(r);
});

test("attestOpenEnclave: report with binary and JSON runtime data, evidence with custom claims", async () => {
  const bin = await client.attestOpenEnclave(gen("oe-report.bin"), { runTimeData: runtimeBin });
  assertEnclave(bin);
  assert.deepEqual(Buffer.from(bin.body.enclaveHeldData), runtimeBin);
  const json = await client.attestOpenEnclave(gen("oe-report-json.bin"), { runTimeJson: runtimeJSON });
  assertEnclave(json);
  assertDefaultPolicyClaims(json);
  assert.deepEqual(json.body.runTimeClaims, JSON.parse(runtimeJSON));
  const ev = await client.attestOpenEnclave(gen("oe-evidence.bin"));
  const claims = assertEnclave(ev);
  for (const [k, v] of Object.entries(manifest.oe_custom_claims)) {
    assert.equal(claims["x-ms-sgx-oe-custom-claims"][k], b64u(v));
  }
});

// KSS enclaves: CONFIGID[0:32] = SHA-256(init-time data) (manifest.kss).
const initTimeBin = gen("inittime.bin");
const initTimeJSON = gen("inittime.json");
const kssClaimNames = ["x-ms-sgx-config-id", "x-ms-sgx-config-svn", "x-ms-sgx-isv-extended-product-id", "x-ms-sgx-isv-family-id"];

function assertKSS(result, file) {
  const claims = assertEnclave(result);
  const k = manifest.kss[file];
  assert.ok(k, `manifest.kss lists ${file}`);
  assert.equal(claims["x-ms-sgx-config-id"], k.config_id);
  assert.equal(claims["x-ms-sgx-config-id"].length, 128);
  assert.equal(claims["x-ms-sgx-config-id"].slice(0, 64), createHash("sha256").update(gen(k.init_time)).digest("hex"));
  assert.equal(claims["x-ms-sgx-config-svn"], k.config_svn);
  assert.equal(claims["x-ms-sgx-isv-extended-product-id"], k.isv_extended_product_id);
  assert.equal(claims["x-ms-sgx-isv-family-id"], k.isv_family_id);
  return claims;
}

test("KSS enclaves: init-time data bound by CONFIGID (binary and JSON, quotes v3/v4, OE reports)", async () => {
  for (const [attest, file, opts, json] of [
    [client.attestSgxEnclave, "sgx-quote-v3-kss.bin", { runTimeData: runtimeBin, initTimeData: initTimeBin }, false],
    [client.attestSgxEnclave, "sgx-quote-v4-kss.bin", { runTimeData: runtimeBin, initTimeData: initTimeBin }, false],
    [client.attestSgxEnclave, "sgx-quote-v3-kss-json.bin", { runTimeJson: runtimeJSON, initTimeJson: initTimeJSON }, true],
    [client.attestSgxEnclave, "sgx-quote-v4-kss-json.bin", { runTimeJson: runtimeJSON, initTimeJson: initTimeJSON }, true],
    [client.attestOpenEnclave, "oe-report-kss.bin", { runTimeData: runtimeBin, initTimeData: initTimeBin }, false],
    [client.attestOpenEnclave, "oe-report-kss-json.bin", { runTimeJson: runtimeJSON, initTimeJson: initTimeJSON }, true],
  ]) {
    const r = await attest.call(client, gen(file), opts);
    assert.equal(r.token.algorithm, "RS256", file);
    const claims = assertKSS(r, file);
    assertDefaultPolicyClaims(r);
    assert.equal(manifest.kss[file].init_time_data_type, json ? "JSON" : "Binary");
    if (json) {
      assert.deepEqual(r.body.initTimeClaims, JSON.parse(initTimeJSON), file);
      assert.deepEqual(claims["x-ms-inittime"], JSON.parse(initTimeJSON), file);
      assert.deepEqual(r.body.runTimeClaims, JSON.parse(runtimeJSON), file);
    } else {
      assert.equal(r.body.initTimeClaims, undefined, file);
      assert.equal(claims["x-ms-inittime"], undefined, file);
      assert.deepEqual(Buffer.from(r.body.enclaveHeldData), runtimeBin, file);
    }
  }
  // Without init-time data a KSS enclave still attests, with its KSS claims.
  assertKSS(await client.attestSgxEnclave(gen("sgx-quote-v3-kss.bin")), "sgx-quote-v3-kss.bin");
});

test("KSS claims reach the policy", async () => {
  const k = manifest.kss["sgx-quote-v4-kss-json.bin"];
  const draft = 'version=1.0; authorizationrules{ c:[type=="x-ms-sgx-config-svn", value==' + k.config_svn +
    '] && d:[type=="x-ms-sgx-isv-family-id", value=="' + k.isv_family_id + '"] => permit(); };' +
    ' issuancerules{ c:[type=="x-ms-sgx-config-id"] => issue(type="config-id", value=c.value); };';
  const r = await client.attestSgxEnclave(gen("sgx-quote-v4-kss-json.bin"), { initTimeJson: initTimeJSON, draftPolicyForAttestation: draft });
  assert.equal(r.token.algorithm, "none");
  assert.equal(r.body.policyClaims["config-id"], k.config_id);
  // The same policy denies a non-KSS enclave (it has no x-ms-sgx-config-svn).
  await rejectsWith(client.attestSgxEnclave(gen("sgx-quote-v4.bin"), { draftPolicyForAttestation: draft }), 400, "PolicyEvaluationError");
});

test("init-time data that CONFIGID does not bind is rejected; non-KSS enclaves carry no KSS claims", async () => {
  for (const [attest, file, opts] of [
    [client.attestSgxEnclave, "sgx-quote-v3-kss-json.bin", { initTimeData: initTimeBin }], // bound: inittime.json
    [client.attestSgxEnclave, "sgx-quote-v4-kss.bin", { initTimeJson: initTimeJSON }], // bound: inittime.bin
    [client.attestSgxEnclave, "sgx-quote-v4-kss.bin", { initTimeData: Buffer.concat([initTimeBin, Buffer.from([0])]) }],
    [client.attestOpenEnclave, "oe-report-kss-json.bin", { initTimeJson: Buffer.from('{"config":{"mode":"debug"}}') }],
    [client.attestSgxEnclave, "sgx-quote-v3.bin", { initTimeData: initTimeBin }], // non-KSS: CONFIGID is zero
    [client.attestOpenEnclave, "oe-report.bin", { initTimeData: initTimeBin }],
  ]) {
    await rejectsWith(attest.call(client, gen(file), opts), 400, "InvalidParameter", /inittimedata\.binding/);
  }
  for (const [attest, file] of [[client.attestSgxEnclave, "sgx-quote-v3.bin"], [client.attestSgxEnclave, "sgx-quote-v4.bin"], [client.attestOpenEnclave, "oe-report.bin"]]) {
    const claims = assertEnclave(await attest.call(client, gen(file)));
    for (const c of [...kssClaimNames, "x-ms-inittime"]) assert.equal(claims[c], undefined, `${file}: ${c}`);
  }
});

test("draftPolicyForAttestation: unsigned token with the draft's claims", async () => {
  const draft = 'version=1.0; authorizationrules{ c:[type=="x-ms-sgx-mrsigner", value=="' + manifest.mrsigner +
    '"] => permit(); }; issuancerules{ c:[type=="x-ms-sgx-svn"] => issue(type="draft-svn", value=c.value); };';
  for (const [attest, file] of [[client.attestSgxEnclave, "sgx-quote-v3.bin"], [client.attestOpenEnclave, "oe-report.bin"]]) {
    const r = await attest.call(client, gen(file), { runTimeData: runtimeBin, draftPolicyForAttestation: draft });
    assert.equal(r.token.algorithm, "none");
    assert.equal(r.body.policyClaims["draft-svn"], manifest.svn);
    assert.equal(r.token.getBody()["draft-svn"], manifest.svn);
    assert.equal(r.body.mrEnclave, manifest.mrenclave);
  }
});

test("wrong evidence: a flipped bit is InvalidParameter naming the failed check", async () => {
  for (const [attest, file, offset] of [
    [client.attestSgxEnclave, "sgx-quote-v3.bin", 48 + 64], // MRENCLAVE in the report body
    [client.attestOpenEnclave, "oe-report.bin", 16 + 48 + 64],
  ]) {
    const bad = Buffer.from(gen(file));
    bad[offset] ^= 0x01;
    await rejectsWith(attest.call(client, bad, { runTimeData: runtimeBin }), 400, "InvalidParameter", /quote\.signature/);
  }
  // Signature bytes themselves.
  const bad = Buffer.from(gen("sgx-quote-v3.bin"));
  bad[436 + 4] ^= 0x80;
  await rejectsWith(client.attestSgxEnclave(bad), 400, "InvalidParameter");
});

test("runtime data that the report data does not bind is rejected", async () => {
  await rejectsWith(client.attestSgxEnclave(gen("sgx-quote-v3.bin"), { runTimeJson: runtimeJSON }), 400, "InvalidParameter", /runtimedata\.binding/);
  await rejectsWith(client.attestOpenEnclave(gen("oe-report.bin"), { runTimeData: Buffer.from("other") }), 400, "InvalidParameter", /runtimedata\.binding/);
});

test("a denying policy is PolicyEvaluationError (draft and policy in force)", async () => {
  const deny = "version=1.0; authorizationrules{ => deny(); }; issuancerules{};";
  await rejectsWith(client.attestSgxEnclave(gen("sgx-quote-v3.bin"), { draftPolicyForAttestation: deny }), 400, "PolicyEvaluationError");

  const admin = new AttestationAdministrationClient(URL_SGX, credential(env("ATTESTD_TOKEN_SGX")), { validationOptions: validation });
  const onlyOther = 'version=1.0; authorizationrules{ c:[type=="x-ms-sgx-mrenclave", value=="' + "00".repeat(32) + '"] => permit(); }; issuancerules{};';
  await admin.setPolicy(KnownAttestationType.OpenEnclave, onlyOther);
  try {
    await rejectsWith(client.attestOpenEnclave(gen("oe-report.bin")), 400, "PolicyEvaluationError");
    // SgxEnclave keeps its default policy.
    assertEnclave(await client.attestSgxEnclave(gen("sgx-quote-v3.bin")));
  } finally {
    await admin.resetPolicy(KnownAttestationType.OpenEnclave);
  }
  assertEnclave(await client.attestOpenEnclave(gen("oe-report.bin")));
});

test("the token's x-ms-policy-hash is the hash of the default policy in force", async () => {
  const admin = new AttestationAdministrationClient(URL_SGX, credential(env("ATTESTD_TOKEN_SGX")), { validationOptions: validation });
  const text = (await admin.getPolicy(KnownAttestationType.SgxEnclave)).body;
  const r = await client.attestSgxEnclave(gen("sgx-quote-v3.bin"));
  // x-ms-policy-hash = b64url(SHA-256(b64url(text))) (maa-policy.md).
  const want = createHash("sha256").update(b64u(text)).digest();
  assert.deepEqual(Buffer.from(r.body.policyHash), want);
});

// token_algorithm ES256 (attestd beyond MAA): @azure/attestation 1.0.0
// verifies a token's signature with jsrsasign against the x5c of the
// /certs key its kid names, whatever the key type, so ES256 tokens validate
// (signature, times, issuer) like RS256 ones; a tampered one is refused.
test("ES256 attestation tokens validate with the official client", async () => {
  const URL_ES = env("ATTESTD_ES256_URL");
  const opts = { ...validation, expectedIssuer: URL_ES };
  const es = new AttestationClient(URL_ES, { validationOptions: opts });
  const r = await es.attestSgxEnclave(gen("sgx-quote-v3.bin"), { runTimeData: runtimeBin });
  assert.equal(r.token.algorithm, "ES256");
  assert.equal(r.body.issuer, URL_ES);
  assert.equal(r.body.mrEnclave, manifest.mrenclave);
  const signers = await es.getAttestationSigners();
  const kinds = signers.map((s) => new X509Certificate(s.certificates[0]).publicKey.asymmetricKeyType).sort();
  // The EC attestation keys and the RSA management keys, each set its
  // active key and the standby of staged rotation (published before it
  // signs): both sets are store key sets.
  assert.deepEqual([...new Set(kinds)], ["ec", "rsa"], "the RSA management keys and the EC attestation keys");
  assert.equal(kinds.filter((k) => k === "ec").length, 2, "the EC attestation key and its standby");
  assert.equal(kinds.filter((k) => k === "rsa").length, 2, "the RSA management key and its standby");
  assert.deepEqual(r.token.getTokenProblems(signers, opts), []);
  // The same token with one signature byte changed fails validation.
  const [h, p, s] = r.token.serialize().split(".");
  const sig = Buffer.from(s, "base64url");
  sig[5] ^= 1;
  const tampered = new r.token.constructor([h, p, sig.toString("base64url")].join("."));
  const problems = tampered.getTokenProblems(signers, opts);
  assert.ok(problems.some((m) => /not properly signed/.test(m)), `problems: ${problems}`);
});
