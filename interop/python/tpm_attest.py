"""MAA's TPM protocol with the official Python SDK (azure-security-attestation,
Debian's python3-azure) against a real attestd.

Run by interop/js/run.mjs after the npm tests, with the server it started:
ATTESTD_TPM_URL (an AAD instance whose "tpm" block trusts the AK of the
software TPM behind ATTESTD_TPMHELPER_URL), ATTESTD_TOKEN_TPM (a
contributor bearer token) and REQUESTS_CA_BUNDLE (the server's TLS
certificate). attest_tpm carries the protocol messages; the quote and the
signed request come from testing/swtpm/cmd/tpmhelper. Exits non-zero on the
first failed check.
"""

import base64
import json
import os
import sys
import time
import urllib.request
import ssl

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.security.attestation import (
    AttestationAdministrationClient,
    AttestationClient,
)

URL = os.environ["ATTESTD_TPM_URL"]
HELPER = os.environ["ATTESTD_TPMHELPER_URL"]
TOKEN = os.environ["ATTESTD_TOKEN_TPM"]

POLICY = (
    "version=1.2;"
    'authorizationrules { [type=="aikValidated", value==true] && [type=="secureBootEnabled", value==true] => permit(); };'
    "issuancerules {"
    ' c:[type=="aikValidated"] => issue(type="aikValidated", value=c.value);'
    ' c:[type=="secureBootEnabled"] => issue(type="secureBootEnabled", value=c.value);'
    ' c:[type=="urn:attestd:tpm:custom:tenant", issuer=="CustomClaim"] => issue(type="tenant", value=c.value);'
    "};"
)


class Credential:
    """A TokenCredential returning the bearer token run.mjs minted."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(TOKEN, int(time.time()) + 3600)


def check(cond, what):
    if not cond:
        print("FAIL python interop:", what)
        sys.exit(1)
    print("ok python interop:", what)


def b64url_json(s):
    return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))


def helper_request(challenge, service_context, protocol=2):
    body = json.dumps({"challenge": challenge, "service_context": service_context, "protocol": protocol}).encode()
    req = urllib.request.Request(HELPER + "/request", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode("ascii")


def main():
    cred = Credential()
    admin = AttestationAdministrationClient(URL, cred, validate_token=True, validate_issuer=True, issuer=URL)
    client = AttestationClient(URL, cred, validate_token=True, validate_issuer=True, issuer=URL)

    admin.reset_policy("Tpm")
    text, _ = admin.get_policy("Tpm")
    check(text == "", "get_policy(Tpm) without a policy returns the empty text")

    init = json.dumps({"payload": {"type": "aikcert"}})
    try:
        client.attest_tpm(init)
        check(False, "attest_tpm without a Tpm policy is refused")
    except HttpResponseError as e:
        check(e.status_code == 400 and "A VBS attestation policy has not been set" in str(e),
              "attest_tpm without a Tpm policy: 400 Bad request")

    admin.set_policy("Tpm", POLICY)
    text, _ = admin.get_policy("Tpm")
    check(text == POLICY, "get_policy(Tpm) returns the policy set")

    challenge = json.loads(client.attest_tpm(init))["payload"]
    check(len(base64.urlsafe_b64decode(challenge["challenge"] + "==")) == 16, "init round: a 16-byte challenge")
    request = helper_request(challenge["challenge"], challenge["service_context"])
    report = json.loads(client.attest_tpm(request))["payload"]["report"]
    claims = b64url_json(report.split(".")[1])
    check(claims.get("aikValidated") is True and claims.get("secureBootEnabled") is True,
          "report: aikValidated and secureBootEnabled")
    check(claims.get("tenant") == "interop", "report: the custom claim issued by the policy")
    check(claims.get("iss") == URL and "cnf" in claims, "report: iss and cnf")
    header = b64url_json(report.split(".")[0])
    check(len(header.get("x5c", [])) == 1, "report header carries x5c")

    try:
        client.attest_tpm(request)
        check(False, "a replayed request is refused")
    except HttpResponseError as e:
        check(e.status_code == 400 and "service_context.replayed" in str(e), "a replayed request: service_context.replayed")

    # v1 (attReq): a PCP platform claim built by tpmhelper from swtpm.
    challenge = json.loads(client.attest_tpm(init))["payload"]
    request = helper_request(challenge["challenge"], challenge["service_context"], 1)
    jws = json.loads(request)["payload"]["request"]
    check(b64url_json(jws.split(".")[0]).get("typ") == "attReq", "v1 request: typ attReq")
    claims = b64url_json(json.loads(client.attest_tpm(request))["payload"]["report"].split(".")[1])
    check(claims.get("aikValidated") is True and claims.get("secureBootEnabled") is True and claims.get("tenant") == "interop",
          "v1 report: the same claims as v2")
    check("cnf" not in claims, "v1 report: no cnf for an attest_key the TPM does not bind")


if __name__ == "__main__":
    main()
