// Package pcstest is a fake Intel PCS / PCCS for tests: it serves given
// collateral sets on the PCS v4 paths the way PCS does (signed JSON bodies,
// DER or PEM CRLs, URL-encoded issuer chains in response headers), so code
// that fetches collateral can be tested on loopback without Intel's servers.
package pcstest

import (
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/attestd/attestd/collateral"
)

// Paths of the Root CA CRL: Intel's distribution point path (DER) and the
// PCCS path (answered in hex, as older PCCS versions do).
const (
	RootCACRLPath     = "/IntelSGXRootCA.der"
	PCCSRootCACRLPath = "/sgx/certification/v4/rootcacrl"
)

// Handler serves Sets. The zero value serves nothing (404s). A TCB info or QE
// identity request with tcbEvaluationDataNumber=N is answered from the first
// set whose document carries N (404 if none), as PCS does; without it, from
// the first set that matches.
type Handler struct {
	Sets []*collateral.Collateral
	// RawTCBInfo serves stored response bodies verbatim, keyed
	// "sgx/<fmspc>" or "tdx/<fmspc>"; the issuer chain header comes from
	// Sets[0].
	RawTCBInfo map[string][]byte
	// RawQEIdentity does the same for QE identities, keyed "sgx"/"tdx".
	RawQEIdentity map[string][]byte
	// Override may answer a request itself (failure injection); it returns
	// true when it did.
	Override func(w http.ResponseWriter, r *http.Request) bool

	mu   sync.Mutex
	seen []Seen
}

// Seen records one request.
type Seen struct {
	Host, Path, Query string
	SubscriptionKey   string // the Ocp-Apim-Subscription-Key header
}

// Requests returns the requests served so far.
func (h *Handler) Requests() []Seen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Seen(nil), h.seen...)
}

// EscapeHeader URL-encodes an issuer chain as PCS does: %20 for spaces, %2B
// for '+', %0A for newlines.
func EscapeHeader(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// Body builds a PCS response body around signed bytes.
func Body(member string, signed, sig []byte) []byte {
	return []byte(`{"` + member + `":` + string(signed) + `,"signature":"` + hex.EncodeToString(sig) + `"}`)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, Seen{Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, SubscriptionKey: r.Header.Get("Ocp-Apim-Subscription-Key")})
	h.mu.Unlock()
	if h.Override != nil && h.Override(w, r) {
		return
	}
	w.Header().Set("Request-ID", "pcstest-0001")
	tee := "sgx"
	if strings.HasPrefix(r.URL.Path, "/tdx/") {
		tee = "tdx"
	}
	// req is what each set answers: its TEE (lower case), FMSPC and CA.
	req := func(c *collateral.Collateral) collateral.Request {
		info, err := c.Inspect()
		if err != nil {
			return collateral.Request{}
		}
		r := info.Request
		r.TEE = collateral.TEE(strings.ToLower(string(r.TEE)))
		return r
	}
	// evalNum is the tcbEvaluationDataNumber asked for (0: none) and
	// numOK whether a set's document carries it.
	evalNum, _ := strconv.Atoi(r.URL.Query().Get("tcbEvaluationDataNumber"))
	numOK := func(c *collateral.Collateral, qe bool) bool {
		if evalNum == 0 {
			return true
		}
		info, err := c.Inspect()
		if err != nil {
			return false
		}
		if qe {
			return info.QEIdentity.TCBEvaluationDataNumber == evalNum
		}
		return info.TCBInfo.TCBEvaluationDataNumber == evalNum
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/certification/v4/tcb"):
		fmspc := strings.ToLower(r.URL.Query().Get("fmspc"))
		if b, ok := h.RawTCBInfo[tee+"/"+fmspc]; ok && len(h.Sets) > 0 {
			w.Header().Set("TCB-Info-Issuer-Chain", EscapeHeader(string(h.Sets[0].TCBInfoIssuerChain)))
			w.Write(b)
			return
		}
		for _, c := range h.Sets {
			if q := req(c); string(q.TEE) == tee && q.FMSPC == fmspc && numOK(c, false) {
				w.Header().Set("TCB-Info-Issuer-Chain", EscapeHeader(string(c.TCBInfoIssuerChain)))
				w.Write(Body("tcbInfo", c.TCBInfo, c.TCBInfoSignature))
				return
			}
		}
		w.Header().Set("Error-Code", "NotFound")
		http.Error(w, "", http.StatusNotFound)
	case strings.HasSuffix(r.URL.Path, "/certification/v4/qe/identity"):
		if b, ok := h.RawQEIdentity[tee]; ok && len(h.Sets) > 0 {
			w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", EscapeHeader(string(h.Sets[0].QEIdentityIssuerChain)))
			w.Write(b)
			return
		}
		for _, c := range h.Sets {
			if string(req(c).TEE) == tee && numOK(c, true) {
				w.Header().Set("SGX-Enclave-Identity-Issuer-Chain", EscapeHeader(string(c.QEIdentityIssuerChain)))
				w.Write(Body("enclaveIdentity", c.QEIdentity, c.QEIdentitySignature))
				return
			}
		}
		http.NotFound(w, r)
	case r.URL.Path == "/sgx/certification/v4/pckcrl":
		for _, c := range h.Sets {
			if req(c).CA == r.URL.Query().Get("ca") {
				w.Header().Set("SGX-PCK-CRL-Issuer-Chain", EscapeHeader(string(c.PCKCRLIssuerChain)))
				if r.URL.Query().Get("encoding") == "der" {
					w.Write(c.PCKCRL)
				} else {
					pem.Encode(w, &pem.Block{Type: "X509 CRL", Bytes: c.PCKCRL})
				}
				return
			}
		}
		http.NotFound(w, r)
	case r.URL.Path == PCCSRootCACRLPath && len(h.Sets) > 0:
		w.Write([]byte(hex.EncodeToString(h.Sets[0].RootCACRL)))
	case r.URL.Path == RootCACRLPath && len(h.Sets) > 0:
		w.Write(h.Sets[0].RootCACRL)
	default:
		http.NotFound(w, r)
	}
}
