package verify

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/bundle"
	"github.com/attestd/attestd/evidence"
	"github.com/attestd/attestd/evidence/dcap/pcs"
	"github.com/attestd/attestd/evidence/sgx/abi"
	"github.com/attestd/attestd/internal/testenv"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

type vectorSet struct {
	quote []byte
	coll  *collateral.Collateral
}

func loadDCAPQVL(t testing.TB, quote, coll string) vectorSet {
	t.Helper()
	q := testenv.ReadShared(t, quote)
	c, err := bundle.ParseQVLJSON(testenv.ReadShared(t, coll))
	if err != nil {
		t.Fatalf("load %s: %v", coll, err)
	}
	return vectorSet{q, c}
}

// loadOcclum assembles the occlum quote's collateral (TCB info v2) from the
// loose automata-dcap-rs files.
func loadOcclum(t testing.TB) vectorSet {
	t.Helper()
	q := testenv.ReadShared(t, "vectors/trustee-verifier/deps/verifier/test_data/occlum_quote.dat")
	tcbDoc, err := collateral.ParseTCBInfoResponse(testenv.ReadShared(t, "vectors/automata-dcap-rs/data/tcbinfov2.json"))
	if err != nil {
		t.Fatal(err)
	}
	qeDoc, err := collateral.ParseQEIdentityResponse(testenv.ReadShared(t, "vectors/automata-dcap-rs/data/qeidentityv2.json"))
	if err != nil {
		t.Fatal(err)
	}
	tcb, tcbSig, qe, qeSig := tcbDoc.Body, tcbDoc.Signature, qeDoc.Body, qeDoc.Signature
	signing := testenv.ReadShared(t, "vectors/automata-dcap-rs/data/tcb_signing_cert.pem")
	pckChain := testenv.ReadShared(t, "vectors/automata-dcap-rs/data/pck_certchain.pem")
	certs, err := ParseCertificates(pckChain)
	if err != nil {
		t.Fatal(err)
	}
	// PCK CRL issuer chain = Platform CA + root (the last two of pck_certchain.pem).
	var crlChain []byte
	for _, c := range certs[1:] {
		crlChain = append(crlChain, pemCert(c.Raw)...)
	}
	return vectorSet{q, &collateral.Collateral{
		PCKCRLIssuerChain:  crlChain,
		RootCACRL:          testenv.ReadShared(t, "vectors/automata-dcap-rs/data/intel_root_ca_crl.der"),
		PCKCRL:             testenv.ReadShared(t, "vectors/automata-dcap-rs/data/pck_platform_crl.der"),
		TCBInfoIssuerChain: signing, TCBInfo: tcb, TCBInfoSignature: tcbSig,
		QEIdentityIssuerChain: signing, QEIdentity: qe, QEIdentitySignature: qeSig,
	}}
}

func verifyAt(t testing.TB, vs vectorSet, at time.Time, grace time.Duration) (*Result, error) {
	t.Helper()
	v, err := New(Options{Now: func() time.Time { return at }, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	q, err := abi.ParseQuote(vs.quote)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return v.Verify(vs.quote, q, vs.coll)
}

func TestRealVectors(t *testing.T) {
	type tc struct {
		name      string
		load      func(t testing.TB) vectorSet
		at        string
		grace     time.Duration
		status    pcs.TCBStatus
		advisory  []string
		wantCheck string // "" = success
		anyOf     []string
	}
	d1 := func(t testing.TB) vectorSet {
		return loadDCAPQVL(t, "vectors/dcap-qvl/sample/sgx_quote", "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	}
	m1 := func(t testing.TB) vectorSet {
		return loadDCAPQVL(t, "vectors/mobilecoin-sgx/verifier/data/tests/hw_quote.dat", "vectors/derived-dcapqvl-collateral/mobilecoin_00906ed50000_2023-07.json")
	}
	cases := []tc{
		{name: "D1 window start", load: d1, at: "2025-06-19T10:56:11Z", status: pcs.ConfigurationAndSWHardeningNeeded, advisory: []string{"INTEL-SA-00289", "INTEL-SA-00615"}},
		{name: "D1 window end", load: d1, at: "2025-07-19T10:01:18Z", status: pcs.ConfigurationAndSWHardeningNeeded, advisory: []string{"INTEL-SA-00289", "INTEL-SA-00615"}},
		{name: "D1 before TCB info", load: d1, at: "2025-06-19T10:56:10Z", wantCheck: "tcb_info.not_yet_valid"},
		{name: "D1 after QE identity", load: d1, at: "2025-07-19T10:01:19Z", wantCheck: "qe_identity.expired"},
		{name: "D1 after TCB info", load: d1, at: "2025-07-19T10:56:12Z", wantCheck: "tcb_info.expired"},
		{name: "D1 grace covers", load: d1, at: "2025-07-20T00:00:00Z", grace: 48 * time.Hour, status: pcs.ConfigurationAndSWHardeningNeeded, advisory: []string{"INTEL-SA-00289", "INTEL-SA-00615"}},
		{name: "D1 grace too short", load: d1, at: "2025-07-25T00:00:00Z", grace: 48 * time.Hour, wantCheck: "tcb_info.expired"},
		{name: "occlum TCB info v2", load: loadOcclum, at: "2025-02-20T00:00:00Z", status: pcs.OutOfDate},
		{name: "M1 2023-04-25", load: m1, at: "2023-04-25T00:00:00Z", anyOf: []string{"tcb_info.not_yet_valid", "pck_crl.expired"}},
		{name: "M1 2023-06-01", load: m1, at: "2023-06-01T00:00:00Z", anyOf: []string{"tcb_info.not_yet_valid", "pck_crl.expired"}},
		{name: "M1 2023-07-12T20:49", load: m1, at: "2023-07-12T20:49:00Z", anyOf: []string{"tcb_info.not_yet_valid", "pck_crl.expired"}},
		{name: "M1 2023-08-01", load: m1, at: "2023-08-01T00:00:00Z", anyOf: []string{"tcb_info.not_yet_valid", "pck_crl.expired"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := c.load(t)
			res, err := verifyAt(t, vs, mustTime(t, c.at), c.grace)
			switch {
			case c.anyOf != nil:
				if err == nil || !slices.Contains(c.anyOf, evidence.CheckOf(err)) {
					t.Fatalf("got %v (check %q), want one of %v", err, evidence.CheckOf(err), c.anyOf)
				}
				t.Logf("fails as expected: %v", err)
			case c.wantCheck != "":
				if got := evidence.CheckOf(err); got != c.wantCheck {
					t.Fatalf("got %v (check %q), want check %q", err, got, c.wantCheck)
				}
			default:
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				t.Logf("status %s (platform %s, QE %s), advisories %v, FMSPC %s, CA %s", res.Status, res.PlatformStatus, res.QEStatus, res.AdvisoryIDs, res.FMSPC, res.PCKCA)
				if c.status != "" && res.Status != c.status {
					t.Errorf("status %s, want %s", res.Status, c.status)
				}
				if c.advisory != nil && !slices.Equal(res.AdvisoryIDs, c.advisory) {
					t.Errorf("advisories %v, want %v", res.AdvisoryIDs, c.advisory)
				}
				if (c.grace > 0) != (len(res.GraceUsed) > 0) && c.grace > 0 {
					t.Errorf("grace used %v with grace %v", res.GraceUsed, c.grace)
				}
			}
		})
	}
}

// TestM1FailsAtEveryInstant walks the whole period around the mobilecoin
// collateral day by day: no instant verifies.
func TestM1FailsAtEveryInstant(t *testing.T) {
	vs := loadDCAPQVL(t, "vectors/mobilecoin-sgx/verifier/data/tests/hw_quote.dat", "vectors/derived-dcapqvl-collateral/mobilecoin_00906ed50000_2023-07.json")
	v, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := abi.ParseQuote(vs.quote)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"tcb_info.not_yet_valid", "pck_crl.expired", "pck_crl.not_yet_valid", "root_crl.not_yet_valid", "tcb_info.expired", "qe_identity.not_yet_valid", "qe_identity.expired", "root_crl.expired"}
	for at := mustTime(t, "2023-03-01T00:00:00Z"); at.Before(mustTime(t, "2024-06-01T00:00:00Z")); at = at.Add(6 * time.Hour) {
		v.now = func() time.Time { return at }
		_, err := v.Verify(vs.quote, q, vs.coll)
		if err == nil {
			t.Fatalf("M1 verified at %s", at)
		}
		if !slices.Contains(allowed, evidence.CheckOf(err)) {
			t.Fatalf("at %s: %v (check %q) does not name a collateral window", at, err, evidence.CheckOf(err))
		}
	}
}

func TestDefaultRootIsIntel(t *testing.T) {
	der := testenv.ReadShared(t, "vectors/dcap-qvl/src/TrustedRootCA.der")
	r := DefaultRoots()
	if string(r[0].Raw) != string(der) {
		t.Fatal("embedded root differs from dcap-qvl's TrustedRootCA.der")
	}
	if _, err := os.Stat("../../dcap/intel_sgx_root_ca.pem"); err != nil {
		t.Fatal(err)
	}
}
