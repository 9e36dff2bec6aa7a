// Test policy-management certificates: an RSA key from node:crypto and a
// self-signed X.509 certificate built with jsrsasign (Node has no API to
// create certificates; jsrsasign is what @azure/attestation itself uses).
import { generateKeyPairSync } from "node:crypto";
import rs from "jsrsasign";

export function makeCert(cn) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" });
  const prv = rs.KEYUTIL.getKey(keyPem);
  const pub = rs.KEYUTIL.getKey({ n: prv.n.toString(16), e: prv.e.toString(16) });
  const now = new Date();
  const fmt = (d) => d.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z";
  const cert = new rs.KJUR.asn1.x509.Certificate({
    version: 3,
    serial: { hex: Buffer.from(cn).toString("hex").slice(0, 16) },
    issuer: { str: "/CN=" + cn },
    subject: { str: "/CN=" + cn },
    notbefore: fmt(new Date(now.getTime() - 3600e3)),
    notafter: fmt(new Date(now.getTime() + 365 * 86400e3)),
    sbjpubkey: pub,
    ext: [{ extname: "basicConstraints", cA: true }],
    sigalg: "SHA256withRSA",
    cakey: prv,
  });
  return { certificate: cert.getPEM(), privateKey: keyPem };
}
