package tpmclient

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/go-tpm/tpm2/transport"
)

// DefaultEventLogPath is where Linux exposes the firmware's TCG event log.
const DefaultEventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"

// Attester answers the service's challenge from a TPM: it implements the
// Go SDK's client.TpmAttester. AK and RequestKey are long-lived; each call
// quotes afresh.
type Attester struct {
	TPM transport.TPM
	AK  *Key
	// AIKCert is the AK's certificate (DER), sent as aik_cert when set.
	AIKCert []byte
	// Log is the TCG event log whose events the PCRs hold (nil: none sent).
	Log []byte
	// RequestKey signs the request JWS and is bound by the quote (cnf).
	RequestKey *rsa.PrivateKey
	// CertifiedKey, when set, is certified by the AK into other_keys.
	CertifiedKey *Key
	RPID         string
	RPData       []byte
	CustomClaims []CustomClaim
	// VSMReport makes the request att_type "vbs" (see Request.VSMReport).
	VSMReport func(reportHash [64]byte) ([]byte, error)
	// PCRMask selects the quoted PCRs; 0 means AllPCRs.
	PCRMask uint32
	// Alg signs the request JWS: "PS256" (default) or "RS256".
	Alg string
	// Mutate, for tests, changes the evidence before it is signed.
	Mutate func(*Evidence)
	// Protocol is 2 (attReqV2, the default when 0) or 1 (attReq, a PCP
	// platform claim; RSA AK only).
	Protocol int
	// BootClaim is v1's boot_claim, a PlatformClaim taken at boot.
	BootClaim []byte
}

// TpmRequest builds the {"payload":{"request":"<JWS>"}} message for the
// challenge and service context of the init round.
func (a *Attester) TpmRequest(ctx context.Context, challenge []byte, serviceContext string) ([]byte, error) {
	if a.TPM == nil || a.AK == nil || a.RequestKey == nil {
		return nil, errors.New("tpmclient: Attester needs TPM, AK and RequestKey")
	}
	jws, err := BuildRequest(ctx, a.TPM, Request{
		Challenge: challenge, ServiceContext: serviceContext, RPID: a.RPID, RPData: a.RPData,
		AK: a.AK, AIKCert: a.AIKCert, Log: a.Log, RequestKey: a.RequestKey, CertifiedKey: a.CertifiedKey,
		CustomClaims: a.CustomClaims, VSMReport: a.VSMReport, PCRMask: a.PCRMask, Alg: a.Alg, Mutate: a.Mutate,
		Protocol: a.Protocol, BootClaim: a.BootClaim,
	})
	if err != nil {
		return nil, err
	}
	return RequestMessage(jws), nil
}

// ReadEventLog reads a TCG event log file (DefaultEventLogPath on Linux),
// refusing one larger than the service accepts.
func ReadEventLog(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The HTTP body is about 2.4 times the log (base64url three times over:
	// the log in the JWS payload, the JWS, the {"data"} envelope) and
	// attestd accepts attest bodies up to 4 MiB.
	const limit = 1536 << 10
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: event log exceeds %d bytes", path, limit)
	}
	return b, nil
}
