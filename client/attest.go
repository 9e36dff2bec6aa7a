package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/attestd/attestd/client/verifier"
)

// AttestOptions are the optional parts of an attest request (maa-api.md §1.1).
type AttestOptions struct {
	// RuntimeData is sent as runtimeData with dataType Binary; its SHA-256
	// must be the first 32 bytes of the enclave's report data. The token
	// then carries it in x-ms-sgx-ehd.
	RuntimeData []byte
	// RuntimeJSON is sent as runtimeData with dataType JSON (a JSON text);
	// the token then carries it parsed in x-ms-runtime. At most one of
	// RuntimeData and RuntimeJSON may be set.
	RuntimeJSON []byte
	// InitTimeData / InitTimeJSON: the same for initTimeData, bound to the
	// lower 32 bytes of a KSS enclave's CONFIGID.
	InitTimeData []byte
	InitTimeJSON []byte
	// DraftPolicy, when non-empty, is policy text evaluated instead of the
	// instance's policy; the result is then an UNSIGNED token (alg "none"),
	// reported as AttestationResult.Unsigned — useful for testing a policy,
	// worthless as proof.
	DraftPolicy string
	// Nonce is echoed in the token's nonce claim.
	Nonce string
	// EventLog (TdxVm, attestd beyond MAA) is the TD's CCEL event log, sent
	// as "eventLog" and replayed against the quote's RTMRs.
	EventLog []byte
}

// AttestationResult is a validated attestation token and its typed claims
// (SGX/OE at the top level, SEV-SNP, TDX and TPM in their own fields).
type AttestationResult = verifier.Result

type attestData struct {
	Data     string `json:"data"`
	DataType string `json:"dataType"`
}

type attestRequest struct {
	Quote        string      `json:"quote,omitempty"`
	Report       string      `json:"report,omitempty"`
	RuntimeData  *attestData `json:"runtimeData,omitempty"`
	InitTimeData *attestData `json:"initTimeData,omitempty"`
	DraftPolicy  string      `json:"draftPolicyForAttestation,omitempty"`
	Nonce        string      `json:"nonce,omitempty"`
	EventLog     string      `json:"eventLog,omitempty"`
	// AttestationInfo is AzureGuest's evidence (base64url of its JSON).
	AttestationInfo string `json:"AttestationInfo,omitempty"`
}

func dataOf(bin, js []byte, what string) (*attestData, error) {
	switch {
	case bin != nil && js != nil:
		return nil, fmt.Errorf("client: set %sData or %sJSON, not both", what, what)
	case bin != nil:
		return &attestData{Data: base64.RawURLEncoding.EncodeToString(bin), DataType: "Binary"}, nil
	case js != nil:
		if !json.Valid(js) {
			return nil, fmt.Errorf("client: %sJSON is not valid JSON", what)
		}
		return &attestData{Data: base64.RawURLEncoding.EncodeToString(js), DataType: "JSON"}, nil
	}
	return nil, nil
}

// AttestSgxEnclave sends an SGX ECDSA quote to POST /attest/SgxEnclave and
// returns the validated result.
func (c *Client) AttestSgxEnclave(ctx context.Context, quote []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attest(ctx, "SgxEnclave", attestRequest{Quote: base64.RawURLEncoding.EncodeToString(quote)}, opts)
}

// AttestOpenEnclave sends an OpenEnclave report (or OE SGX_ECDSA evidence)
// to POST /attest/OpenEnclave and returns the validated result.
func (c *Client) AttestOpenEnclave(ctx context.Context, report []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attest(ctx, "OpenEnclave", attestRequest{Report: base64.RawURLEncoding.EncodeToString(report)}, opts)
}

// AttestSevSnpVm sends SEV-SNP evidence to POST /attest/SevSnpVm (api
// 2022-08-01 shape, maa-api.md §1.6, §8): report is the JSON text
// {"SnpReport": b64url(report), "VcekCertChain": b64url(PEM chain),
// "Endorsements"?} the client base64url-encodes as "report" (attestd also
// takes a raw report, its hex text or configfs-tsm JSON there). Runtime
// data binds REPORT_DATA[0:32], init-time data HOST_DATA.
func (c *Client) AttestSevSnpVm(ctx context.Context, report []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attest(ctx, "SevSnpVm", attestRequest{Report: base64.RawURLEncoding.EncodeToString(report)}, opts)
}

// TdxAPIVersion is the api-version AttestTdxVm sends when the client uses
// DefaultAPIVersion (2020-10-01 has no TdxVm): the one the Azure CVM tools
// send (maa-api.md §8). A client configured with another APIVersion sends
// that one.
const TdxAPIVersion = "2023-04-01-preview"

// AttestTdxVm sends an Intel TDX quote (v4 or v5, as the TD's quote
// generation returns it) to POST /attest/TdxVm as "quote". Runtime data
// binds to REPORTDATA[0:32]; init-time data (attestd) to MRCONFIGID[0:32].
func (c *Client) AttestTdxVm(ctx context.Context, quote []byte, opts *AttestOptions) (*AttestationResult, error) {
	return c.attestVersion(ctx, "TdxVm", TdxAPIVersion, attestRequest{Quote: base64.RawURLEncoding.EncodeToString(quote)}, opts)
}

// SevSnpReportJSON builds MAA's SevSnpVm report JSON from a raw report, its
// VCEK/VLEK chain (PEM, as KDS or the host's certificate cache gives it) and
// optional ACI UVM endorsements (COSE_Sign1 each).
func SevSnpReportJSON(report, chainPEM []byte, uvm [][]byte) ([]byte, error) {
	enc := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"SnpReport": enc(report)}
	if len(chainPEM) > 0 {
		m["VcekCertChain"] = enc(chainPEM)
	}
	if len(uvm) > 0 {
		var list []string
		for _, u := range uvm {
			list = append(list, enc(u))
		}
		e, err := json.Marshal(map[string][]string{"Uvm": list})
		if err != nil {
			return nil, err
		}
		m["Endorsements"] = enc(e)
	}
	return json.Marshal(m)
}

func (c *Client) attest(ctx context.Context, typ string, req attestRequest, opts *AttestOptions) (*AttestationResult, error) {
	return c.attestVersion(ctx, typ, "", req, opts)
}

// AttestAzureGuest sends an Azure confidential VM's guest evidence to POST
// /attest/AzureGuest (maa-api.md §8): attestationInfo is the
// AttestationInfo JSON (client/azureguest.Collect builds it from the
// vTPM). The service answers the token encrypted to the vTPM's ephemeral
// key; open decrypts it (azureguest.Evidence.Open), and the token is then
// validated as any other. Runtime and init-time data do not apply
// (opts.RuntimeData etc. must be unset); opts.Nonce is echoed.
func (c *Client) AttestAzureGuest(ctx context.Context, attestationInfo []byte, open func(sealed string) (string, error), opts *AttestOptions) (*AttestationResult, error) {
	if open == nil {
		return nil, fmt.Errorf("client: AttestAzureGuest needs the function that opens the sealed token")
	}
	return c.attestSealed(ctx, "AzureGuest", "", attestRequest{AttestationInfo: base64.RawURLEncoding.EncodeToString(attestationInfo)}, opts, open)
}

// attestVersion is attest with the api-version a type needs when the
// client is at DefaultAPIVersion ("" keeps the client's).
func (c *Client) attestVersion(ctx context.Context, typ, version string, req attestRequest, opts *AttestOptions) (*AttestationResult, error) {
	return c.attestSealed(ctx, typ, version, req, opts, nil)
}

// attestSealed is attestVersion for protocols whose answer must be opened
// (open non-nil) before the token inside is validated.
func (c *Client) attestSealed(ctx context.Context, typ, version string, req attestRequest, opts *AttestOptions, open func(string) (string, error)) (*AttestationResult, error) {
	if c.version != DefaultAPIVersion {
		version = ""
	}
	if opts == nil {
		opts = &AttestOptions{}
	}
	var err error
	if req.RuntimeData, err = dataOf(opts.RuntimeData, opts.RuntimeJSON, "Runtime"); err != nil {
		return nil, err
	}
	if req.InitTimeData, err = dataOf(opts.InitTimeData, opts.InitTimeJSON, "InitTime"); err != nil {
		return nil, err
	}
	req.DraftPolicy, req.Nonce = opts.DraftPolicy, opts.Nonce
	if opts.EventLog != nil {
		req.EventLog = base64.RawURLEncoding.EncodeToString(opts.EventLog)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: "POST", path: "/attest/" + typ, contentType: "application/json", body: body, version: version})
	if err != nil {
		return nil, err
	}
	raw, err := tokenResponse(resp)
	if err != nil {
		return nil, err
	}
	if open != nil {
		if raw, err = open(raw); err != nil {
			return nil, invalid(ReasonMalformed, "opening the sealed token: %v", err)
		}
	}
	t, err := c.validate(ctx, raw, opts.DraftPolicy != "")
	if err != nil {
		return nil, err
	}
	if opts.Nonce != "" && !c.val.SkipValidation {
		if n, _ := t.Claims["nonce"].(string); n != opts.Nonce {
			return nil, invalid(ReasonMalformed, "token nonce %q is not the nonce sent", n)
		}
	}
	return NewAttestationResult(t)
}

// NewAttestationResult reads the typed claims of an attestation token
// (parsed with ParseToken, or validated by a Client). A claim of the wrong
// JSON type is an error: the claim names are MAA's, so a mismatch means
// the token is not what it claims to be.
func NewAttestationResult(t *Token) (*AttestationResult, error) { return verifier.NewResult(t) }
