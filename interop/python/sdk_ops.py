"""Every operation of the official Python SDK (azure-security-attestation
1.0.1, Debian's python3-azure, the one MAA's documentation uses) against a
real attestd, with the SDK's own token validation on (signature by a key of
the instance's /certs, expiry, not-before and the issuer):

  - AAD instance (ATTESTD_URL): OpenID metadata, signing certificates,
    get/set/reset policy (unsigned, and signed by a key the instance does
    not require) for SgxEnclave, OpenEnclave and SevSnpVm (the SDK has no
    SEV-SNP attest call; its policy calls take any type name);
  - Isolated instance (ATTESTD_ISO_URL): an unsigned policy refused, policies
    signed by the management certificate, the management certificate list,
    adding and removing a certificate (signed by an existing one), a change
    signed by an unknown key refused;
  - SgxEnclave and OpenEnclave attestation (ATTESTD_SGX_URL, an AAD
    instance, and the Isolated one, with the test platform sgxgen wrote to
    ATTESTD_SGXGEN_DIR): binary and JSON runtime data, a draft policy
    (unsigned token), refusals naming their check;
  - the SDK's validation is really on: a client expecting another issuer
    refuses attestd's genuine tokens.

Run by interop/js/run.mjs with the server it started (tokens in
ATTESTD_TOKEN_CONTRIBUTOR, ATTESTD_TOKEN_ISO, ATTESTD_TOKEN_SGX; the policy
management key in ATTESTD_PM1_KEY/ATTESTD_PM1_CERT; REQUESTS_CA_BUNDLE the
server's TLS certificate). Exits non-zero on the first failed check.
"""

import base64
import datetime
import hashlib
import json
import os
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.security.attestation import (
    AttestationAdministrationClient,
    AttestationClient,
    AttestationType,
    CertificateModification,
    PolicyModification,
)

ENV = os.environ
AAD = ENV["ATTESTD_URL"]
ISO = ENV["ATTESTD_ISO_URL"]
SGX = ENV["ATTESTD_SGX_URL"]
GEN = ENV["ATTESTD_SGXGEN_DIR"]

PERMIT = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"


class Credential:
    """A TokenCredential returning a bearer token run.mjs minted."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


def check(cond, what):
    if not cond:
        print("FAIL python sdk:", what)
        sys.exit(1)
    print("ok python sdk:", what)


def refused(fn, status, code, what, part=None):
    """fn must raise the service's HttpResponseError with status and code."""
    try:
        fn()
    except HttpResponseError as e:
        got = e.error.code if e.error is not None else None
        ok = e.status_code == status and got == code and (part is None or part in str(e))
        if not ok:
            print("  got", e.status_code, got, str(e)[:400])
        check(ok, what)
        return
    check(False, what + " (no error)")


def validating(cls, url, token=None, issuer=None):
    """A client with every SDK validation on, expecting url as issuer."""
    return cls(url, Credential(token or "unused"), validate_token=True, validate_signature=True,
               validate_expiration=True, validate_not_before_time=True, validate_issuer=True,
               issuer=issuer or url)


def gen(name):
    with open(os.path.join(GEN, name), "rb") as f:
        return f.read()


def read(path):
    with open(path) as f:
        return f.read()


def new_cert(cn):
    """A self-signed RSA certificate and its key, both PEM. RSA because the
    SDK 1.0.1 cannot sign with an EC key under the cryptography Debian
    ships (it calls key.sign(data, algorithm=…), which EC keys refuse)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
            cert)


def thumbprint(cert):
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def metadata_and_certs(url):
    c = validating(AttestationClient, url)
    md = c.get_open_id_metadata()
    check(md["issuer"] == url and md["jwks_uri"] == url + "/certs", url + ": get_open_id_metadata names the instance")
    signers = c.get_signing_certificates()
    check(len(signers) >= 1 and all(s.key_id and s.certificates for s in signers),
          url + ": get_signing_certificates returns keys with certificate chains")


def aad():
    metadata_and_certs(AAD)
    admin = validating(AttestationAdministrationClient, AAD, ENV["ATTESTD_TOKEN_CONTRIBUTOR"])
    signer_pem, signer_key, signer = new_cert("python sdk aad signer")
    for t in [AttestationType.SGX_ENCLAVE, AttestationType.OPEN_ENCLAVE, "SevSnpVm"]:
        name = t.value if isinstance(t, AttestationType) else t
        admin.reset_policy(t)  # whatever an earlier run left
        default, tok = admin.get_policy(t)
        check("version=" in default and tok.issuer == AAD, "AAD get_policy(%s): the default policy, token validated" % name)
        res, _ = admin.set_policy(t, PERMIT)
        check(res.policy_resolution == PolicyModification.UPDATED and res.policy_signer is None,
              "AAD set_policy(%s) unsigned: Updated, no signer" % name)
        check(len(res.policy_token_hash) == 32, "AAD set_policy(%s): the policy token hash is a SHA-256" % name)
        text, _ = admin.get_policy(t)
        check(text == PERMIT, "AAD get_policy(%s) after set returns the text" % name)
        signed = PERMIT + " // signed"
        res, _ = admin.set_policy(t, signed, signing_key=signer_key, signing_certificate=signer_pem)
        check(res.policy_resolution == PolicyModification.UPDATED and res.policy_signer is not None
              and res.policy_signer.certificates[0].strip() == signer_pem.strip(),
              "AAD set_policy(%s) signed by any key: Updated, the signer echoed" % name)
        text, _ = admin.get_policy(t)
        check(text == signed, "AAD get_policy(%s) after the signed set" % name)
        refused(lambda: admin.set_policy(t, "version=1.0; authorizationrules{=> permit()};"), 400,
                "PolicyParsingError", "AAD set_policy(%s) with a syntax error: 400 PolicyParsingError" % name)
        res, _ = admin.reset_policy(t)
        check(res.policy_resolution == PolicyModification.REMOVED, "AAD reset_policy(%s): Removed" % name)
        text, _ = admin.get_policy(t)
        if text != default:
            print("  got %r, want %r" % (text[:200], default[:200]))
        check(text == default, "AAD get_policy(%s) after reset: the default again" % name)
    reader = validating(AttestationAdministrationClient, AAD, ENV["ATTESTD_TOKEN_READER"])
    try:
        reader.set_policy(AttestationType.SGX_ENCLAVE, PERMIT)
        check(False, "AAD set_policy with a reader token is refused")
    except HttpResponseError as e:
        check(e.status_code in (401, 403), "AAD set_policy with a reader token: %d" % e.status_code)


def isolated():
    metadata_and_certs(ISO)
    admin = validating(AttestationAdministrationClient, ISO, ENV["ATTESTD_TOKEN_ISO"])
    pm_pem, pm_key = read(ENV["ATTESTD_PM1_CERT"]), read(ENV["ATTESTD_PM1_KEY"])
    pm = x509.load_pem_x509_certificate(pm_pem.encode())

    certs, _ = admin.get_policy_management_certificates()
    prints = [thumbprint(x509.load_pem_x509_certificate(chain[0].encode())) for chain in certs]
    check(thumbprint(pm) in prints, "Isolated get_policy_management_certificates lists the configured certificate")

    refused(lambda: admin.set_policy(AttestationType.SGX_ENCLAVE, PERMIT), 400, "InvalidOperation",
            "Isolated set_policy unsigned: 400 InvalidOperation")
    stranger_pem, stranger_key, _ = new_cert("python sdk stranger")
    try:
        admin.set_policy(AttestationType.SGX_ENCLAVE, PERMIT, signing_key=stranger_key, signing_certificate=stranger_pem)
        check(False, "Isolated set_policy signed by an unknown key is refused")
    except HttpResponseError as e:
        check(e.status_code == 400, "Isolated set_policy signed by an unknown key: 400 " + str(e.error.code if e.error else ""))
    for t in [AttestationType.SGX_ENCLAVE, AttestationType.OPEN_ENCLAVE, "SevSnpVm"]:
        name = t.value if isinstance(t, AttestationType) else t
        res, _ = admin.set_policy(t, PERMIT, signing_key=pm_key, signing_certificate=pm_pem)
        check(res.policy_resolution == PolicyModification.UPDATED and res.policy_signer is not None,
              "Isolated set_policy(%s) signed by the management key: Updated" % name)
        text, _ = admin.get_policy(t)
        check(text == PERMIT, "Isolated get_policy(%s) returns the signed policy's text" % name)
        res, _ = admin.reset_policy(t, signing_key=pm_key, signing_certificate=pm_pem)
        check(res.policy_resolution == PolicyModification.REMOVED, "Isolated reset_policy(%s) signed: Removed" % name)

    new_pem, _, new = new_cert("python sdk added")
    res, _ = admin.add_policy_management_certificate(new_pem, signing_key=pm_key, signing_certificate=pm_pem)
    check(res.certificate_resolution == CertificateModification.IS_PRESENT and res.certificate_thumbprint == thumbprint(new),
          "Isolated add_policy_management_certificate: IsPresent, its thumbprint")
    certs, _ = admin.get_policy_management_certificates()
    check(len(certs) == len(prints) + 1, "Isolated get_policy_management_certificates after add: one more")
    try:
        admin.remove_policy_management_certificate(new_pem, signing_key=stranger_key, signing_certificate=stranger_pem)
        check(False, "Isolated remove signed by an unknown key is refused")
    except HttpResponseError as e:
        check(e.status_code == 400, "Isolated remove_policy_management_certificate signed by an unknown key: 400")
    res, _ = admin.remove_policy_management_certificate(new_pem, signing_key=pm_key, signing_certificate=pm_pem)
    check(res.certificate_resolution == CertificateModification.IS_ABSENT and res.certificate_thumbprint == thumbprint(new),
          "Isolated remove_policy_management_certificate: IsAbsent")
    certs, _ = admin.get_policy_management_certificates()
    check(len(certs) == len(prints), "Isolated get_policy_management_certificates after remove: as before")


def attest():
    manifest = json.loads(gen("manifest.json"))
    client = validating(AttestationClient, SGX)
    runtime_bin, runtime_json = gen("runtime.bin"), gen("runtime.json")

    r, tok = client.attest_sgx_enclave(gen("sgx-quote-v3.bin"), runtime_data=runtime_bin)
    check(tok.issuer == SGX and r.issuer == SGX and r.mr_enclave == manifest["mrenclave"] and r.mr_signer == manifest["mrsigner"]
          and r.product_id == manifest["product_id"] and r.svn == manifest["svn"] and r.enclave_held_data == runtime_bin,
          "attest_sgx_enclave (quote v3, binary runtime data): validated token, the enclave's identity, held data")
    check(tok.algorithm == "RS256", "attest_sgx_enclave: an RS256 token")
    r, _ = client.attest_sgx_enclave(gen("sgx-quote-v4.bin"), runtime_json=runtime_json)
    check(r.runtime_claims == json.loads(runtime_json), "attest_sgx_enclave (quote v4, JSON runtime data): runtime claims")
    r, _ = client.attest_open_enclave(gen("oe-report.bin"), runtime_data=runtime_bin)
    check(r.mr_enclave == manifest["mrenclave"] and r.enclave_held_data == runtime_bin,
          "attest_open_enclave (binary runtime data)")
    r, _ = client.attest_open_enclave(gen("oe-report-json.bin"), runtime_json=runtime_json)
    check(r.runtime_claims == json.loads(runtime_json), "attest_open_enclave (JSON runtime data)")
    draft = ('version=1.0; authorizationrules{=> permit();}; issuancerules{ c:[type=="x-ms-sgx-svn"] '
             '=> issue(type="draft-svn", value=c.value); };')
    r, tok = client.attest_sgx_enclave(gen("sgx-quote-v3.bin"), draft_policy=draft)
    check(tok.algorithm == "none" and r.policy_claims.get("draft-svn") == manifest["svn"],
          "attest_sgx_enclave with a draft policy: an unsigned token with the draft's claims")
    refused(lambda: client.attest_sgx_enclave(gen("sgx-quote-v3.bin"), runtime_data=runtime_bin + b"x"), 400,
            "InvalidParameter", "attest_sgx_enclave with unbound runtime data: 400 InvalidParameter", "runtimedata")
    refused(lambda: client.attest_sgx_enclave(gen("sgx-quote-v3.bin"),
                                              draft_policy="version=1.0; authorizationrules{=> deny();}; issuancerules{};"),
            400, "PolicyEvaluationError", "attest_sgx_enclave denied by the policy: 400 PolicyEvaluationError")

    # The Isolated instance attests with its own issuer and signing keys.
    iso = validating(AttestationClient, ISO)
    r, tok = iso.attest_sgx_enclave(gen("sgx-quote-v3.bin"), runtime_data=runtime_bin)
    check(tok.issuer == ISO and r.mr_enclave == manifest["mrenclave"], "Isolated attest_sgx_enclave: validated, issuer " + ISO)
    r, tok = iso.attest_open_enclave(gen("oe-report.bin"), runtime_data=runtime_bin)
    check(tok.issuer == ISO and r.enclave_held_data == runtime_bin, "Isolated attest_open_enclave: validated")

    # The SDK's validation is on: the genuine token fails for another issuer.
    wrong = validating(AttestationClient, SGX, issuer="https://elsewhere.attest.azure.net")
    try:
        wrong.attest_sgx_enclave(gen("sgx-quote-v3.bin"), runtime_data=runtime_bin)
        check(False, "a client expecting another issuer refuses the token")
    except HttpResponseError:
        check(False, "a client expecting another issuer refuses the token (got a service error instead)")
    except Exception as e:  # the SDK raises its own validation error
        check("issuer" in str(e).lower(), "a client expecting another issuer refuses the token: " + type(e).__name__)


def main():
    aad()
    isolated()
    attest()
    print("python sdk: all operations passed")


if __name__ == "__main__":
    main()
