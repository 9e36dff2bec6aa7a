// MAA's TPM protocol with the official @azure/attestation@1.0.0 client
// against a real attestd (started by run.mjs) whose "tpm" configuration
// trusts the AK of a real software TPM run by testing/swtpm/cmd/tpmhelper.
// attestTpm only carries the protocol messages; the quote and the signed
// request come from tpmhelper (POST /request). The tests use their own
// instance (/tenants/tpm) so policy changes never race with the others.
import { test } from "node:test";
import assert from "node:assert/strict";
import pkg from "@azure/attestation";

const { AttestationClient, AttestationAdministrationClient } = pkg;

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set: run this file through run.mjs`);
  return v;
};
const URL_TPM = env("ATTESTD_TPM_URL");
const HELPER = env("ATTESTD_TPMHELPER_URL");
const credential = (tok) => ({ getToken: async () => ({ token: tok, expiresOnTimestamp: Date.now() + 3600e3 }) });
const validation = {
  validateToken: true,
  validateExpirationTime: true,
  validateNotBeforeTime: true,
  validateIssuer: true,
  expectedIssuer: URL_TPM,
};
const admin = new AttestationAdministrationClient(URL_TPM, credential(env("ATTESTD_TOKEN_TPM")), { validationOptions: validation });
const client = new AttestationClient(URL_TPM, { validationOptions: validation });

const policy = `version=1.2;
authorizationrules { [type=="aikValidated", value==true] && [type=="secureBootEnabled", value==true] => permit(); };
issuancerules {
  c:[type=="aikValidated"] => issue(type="aikValidated", value=c.value);
  c:[type=="secureBootEnabled"] => issue(type="secureBootEnabled", value=c.value);
  c:[type=="events", issuer=="AttestationService"] => issue(type="secureBootVariables", value=JsonToClaimValue(JmesPath(c.value, "Events[? ProcessedData.UnicodeName == 'SecureBoot'] | length(@)")));
  c:[type=="urn:attestd:tpm:custom:tenant", issuer=="CustomClaim"] => issue(type="tenant", value=c.value);
};`;

const decode = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));

async function helperRequest(challenge, serviceContext, protocol = 2) {
  const r = await fetch(HELPER + "/request", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ challenge, service_context: serviceContext, protocol }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return await r.text();
}

test("getPolicy(Tpm) before any policy: no crash, empty policy text", async () => {
  const r = await admin.getPolicy("Tpm");
  assert.equal(r.body, "");
});

test("attestTpm before a Tpm policy: MAA's 400 Bad request", async () => {
  await assert.rejects(client.attestTpm(JSON.stringify({ payload: { type: "aikcert" } })), (e) => {
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /A VBS attestation policy has not been set/);
    return true;
  });
});

test("attestTpm round trip: init, challenge, swtpm request, report", async () => {
  await admin.setPolicy("Tpm", policy);
  assert.equal((await admin.getPolicy("Tpm")).body, policy);

  const init = JSON.parse(await client.attestTpm(JSON.stringify({ payload: { type: "aikcert" } })));
  assert.equal(Buffer.from(init.payload.challenge, "base64url").length, 16);
  assert.ok(init.payload.service_context.length > 0);

  const request = await helperRequest(init.payload.challenge, init.payload.service_context);
  const reply = JSON.parse(await client.attestTpm(request));
  const claims = decode(reply.payload.report);
  assert.equal(claims.aikValidated, true);
  assert.equal(claims.secureBootEnabled, true);
  assert.equal(claims.secureBootVariables, 1);
  assert.equal(claims.tenant, "interop");
  assert.equal(claims.rp_data, Buffer.from("interop rp_data").toString("base64url"));
  assert.equal(claims.iss, URL_TPM);
  assert.equal(claims.exp - claims.iat, 1440 * 60);
  assert.ok(claims.cnf && claims.cnf.jwk && claims.cnf.jwk.kty === "RSA");

  // The same request again: its service_context was used.
  await assert.rejects(client.attestTpm(request), (e) => {
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /service_context\.replayed/);
    return true;
  });
});

test("attestTpm with a forged service_context is refused with its check", async () => {
  const init = JSON.parse(await client.attestTpm(JSON.stringify({ payload: { type: "aikcert" } })));
  const sc = init.payload.service_context;
  const forged = sc.slice(0, 10) + (sc[10] === "A" ? "B" : "A") + sc.slice(11);
  const request = await helperRequest(init.payload.challenge, forged);
  await assert.rejects(client.attestTpm(request), (e) => {
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /service_context\.forged/);
    return true;
  });
});

test("attestTpm v1 (attReq): a PCP platform claim from swtpm, same claims, no cnf", async () => {
  await admin.setPolicy("Tpm", policy);
  const init = JSON.parse(await client.attestTpm(JSON.stringify({ payload: { type: "aikcert" } })));
  const request = await helperRequest(init.payload.challenge, init.payload.service_context, 1);
  const jws = JSON.parse(request).payload.request;
  assert.equal(JSON.parse(Buffer.from(jws.split(".")[0], "base64url").toString("utf8")).typ, "attReq");
  const claims = decode(JSON.parse(await client.attestTpm(request)).payload.report);
  assert.equal(claims.aikValidated, true);
  assert.equal(claims.secureBootEnabled, true);
  assert.equal(claims.secureBootVariables, 1);
  assert.equal(claims.tenant, "interop");
  assert.equal(claims.cnf, undefined); // a basic v1 attest_key is not bound to the TPM
});
