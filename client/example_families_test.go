package client_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"log"
	"net/http"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/attestd/attestd/client"
	"github.com/attestd/attestd/client/azureguest"
	"github.com/attestd/attestd/testing/snpplatform"
	"github.com/attestd/attestd/testing/tdxplatform"
	"github.com/attestd/attestd/tpmclient"
)

// These examples run against the package's in-process attestd (see
// env_test.go), whose verifiers trust test platforms
// (testing/sgxplatform, snpplatform, tdxplatform): the evidence is real,
// signed by test roots no production attestd trusts. Against real MAA the
// endpoint is the instance URL and the evidence comes from the TEE.

// exampleClient is a client of the package's attestd that requires its
// tokens to come from that instance.
func exampleClient(bearer string) (*client.Client, env) {
	envOnce.Do(startShared)
	if envErr != nil {
		log.Fatal(envErr)
	}
	opts := &client.Options{HTTPClient: shared.HTTPClient(), Validation: client.Validation{Issuer: shared.URL}}
	if bearer != "" {
		opts.Credential = func(context.Context) (string, error) { return bearer, nil }
	}
	c, err := client.New(shared.URL, opts)
	if err != nil {
		log.Fatal(err)
	}
	return c, shared
}

// An Open Enclave report (the 16-byte OE header and an SGX quote) attests
// as OpenEnclave; the token is SGX-shaped (x-ms-attestation-type "sgx").
// JSON runtime data comes back parsed in x-ms-runtime.
func ExampleClient_AttestOpenEnclave() {
	c, e := exampleClient("")
	runtime := []byte(`{"keys":[{"kid":"enclave-key","kty":"oct"}]}`)
	report, err := e.Quote(true, runtime, false)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.AttestOpenEnclave(context.Background(), report, &client.AttestOptions{RuntimeJSON: runtime})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("type:", r.AttestationType, "verified:", r.Token.Verified)
	fmt.Println("mrenclave:", r.MREnclave[:16]+"…", "debuggable:", r.IsDebuggable)
	fmt.Println("runtime key:", r.RuntimeClaims["keys"].([]any)[0].(map[string]any)["kid"])
	// Output:
	// type: sgx verified: true
	// mrenclave: a1a1a1a1a1a1a1a1… debuggable: false
	// runtime key: enclave-key
}

// A SEV-SNP VM sends its attestation report with the VCEK chain, as MAA's
// report JSON; SHA-256 of the runtime data is the first half of
// REPORT_DATA, and init-time data (an ACI policy) is bound to HOST_DATA.
func ExampleClient_AttestSevSnpVm() {
	c, e := exampleClient("")
	runtime := []byte(`{"keys":[]}`)
	hostPolicy := []byte("aci security policy")
	rep := snpplatform.Report{Version: 3, HostData: sha256.Sum256(hostPolicy)}
	h := sha256.Sum256(runtime)
	copy(rep.ReportData[:], h[:])
	for i := range rep.Measurement {
		rep.Measurement[i] = 0x5e
	}
	raw, err := e.SNP.Sign(rep)
	if err != nil {
		log.Fatal(err)
	}
	report, err := client.SevSnpReportJSON(raw, e.SNP.ChainPEM(false), nil)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.AttestSevSnpVm(context.Background(), report, &client.AttestOptions{RuntimeJSON: runtime, InitTimeData: hostPolicy})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("type:", r.AttestationType, "verified:", r.Token.Verified)
	fmt.Println("measurement:", r.SevSnp.LaunchMeasurement[:16]+"…", "debuggable:", r.SevSnp.IsDebuggable)
	fmt.Println("host data is the policy's hash:", r.SevSnp.HostData == fmt.Sprintf("%x", rep.HostData))
	// Output:
	// type: sevsnpvm verified: true
	// measurement: 5e5e5e5e5e5e5e5e… debuggable: false
	// host data is the policy's hash: true
}

// A TDX VM sends its TD quote; the runtime data's SHA-256 is the first
// half of REPORTDATA. The client sends the api-version TdxVm needs.
func ExampleClient_AttestTdxVm() {
	c, e := exampleClient("")
	runtime := []byte(`{"keys":[]}`)
	q := tdxplatform.Quote{}
	q.BindRuntime(runtime)
	for i := range q.Report.MRTD {
		q.Report.MRTD[i] = 0x7d
	}
	quote, err := e.TDX.Mint(q)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.AttestTdxVm(context.Background(), quote, &client.AttestOptions{RuntimeJSON: runtime})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("type:", r.AttestationType, "verified:", r.Token.Verified)
	fmt.Println("mrtd:", r.Tdx.MRTD[:16]+"…", "debug:", r.Tdx.Debug, "tcb:", r.Tdx.TCBStatus)
	// Output:
	// type: tdxvm verified: true
	// mrtd: 7d7d7d7d7d7d7d7d… debug: false tcb: UpToDate
}

// The TCB baselines a policy can select with x-ms-sgx-tcbidentifier (and,
// for information, TDX's): the standard documents ("azuredefault") first,
// then each evaluation data number the service can serve. It needs the
// reader role.
func ExampleClient_GetTCBBaselines() {
	_, e := exampleClient("")
	c, _ := exampleClient(e.Reader)
	for _, t := range []client.AttestationType{client.SgxEnclave, client.TdxVm} {
		bs, err := c.GetTCBBaselines(context.Background(), t)
		if err != nil {
			log.Fatal(err)
		}
		for _, b := range bs {
			fmt.Println(t, b.Identifier, b.EvaluationDataNumber, "selected:", b.Selected)
		}
	}
	// Output:
	// SgxEnclave azuredefault 17 selected: true
	// SgxEnclave 17 17 selected: false
	// TdxVm azuredefault 17 selected: true
	// TdxVm 17 17 selected: false
}

// A TPM attests through MAA's TPM protocol: AttestTpm runs the init round,
// lets the attester quote the service's challenge, and validates the
// report. This example needs a TPM (/dev/tpmrm0) and a service that
// trusts its AK, so it is compiled, not run; TestTpmCLI (cmd/attest) runs
// the same calls against a software TPM.
func ExampleClient_AttestTpm() {
	ctx := context.Background()
	tpm, err := linuxtpm.Open("/dev/tpmrm0")
	if err != nil {
		log.Fatal(err)
	}
	defer tpm.Close()
	ak, err := tpmclient.CreateAK(ctx, tpm, tpmclient.RSA)
	if err != nil {
		log.Fatal(err)
	}
	defer ak.Flush(tpm)
	eventLog, err := tpmclient.ReadEventLog(tpmclient.DefaultEventLogPath)
	if err != nil {
		log.Fatal(err)
	}
	// The request key is bound by the quote: the report's cnf names it.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New("https://myinst.weu.attest.azure.net", &client.Options{
		Validation: client.Validation{Issuer: "https://myinst.weu.attest.azure.net"}})
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.AttestTpm(ctx, &tpmclient.Attester{TPM: tpm, AK: ak, Log: eventLog, RequestKey: key})
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.NewAttestationResult(r.Token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("secure boot:", res.Tpm.SecureBootEnabled, "attested key:", res.Tpm.ConfirmationJWK["kid"])
}

// An Azure confidential VM attests from inside: azureguest.Collect reads
// the HCL report, TCG log and a quote from the vTPM (and the VCEK chain or
// TD quote from IMDS); the service encrypts the token to the vTPM's
// ephemeral key, which Open uses. Compiled, not run: it needs an Azure
// CVM (client/azureguest's TestEndToEndHTTPS runs it on a software TPM).
func ExampleClient_AttestAzureGuest() {
	ctx := context.Background()
	tpm, err := linuxtpm.Open("/dev/tpmrm0")
	if err != nil {
		log.Fatal(err)
	}
	defer tpm.Close()
	ev, err := azureguest.Collect(ctx, tpm, azureguest.Options{HTTPClient: http.DefaultClient})
	if err != nil {
		log.Fatal(err)
	}
	defer ev.Close()
	info, err := ev.JSON()
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New("https://sharedweu.weu.attest.azure.net", nil)
	if err != nil {
		log.Fatal(err)
	}
	r, err := c.AttestAzureGuest(ctx, info, ev.Open, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("type:", r.AttestationType, "compliance:", r.ComplianceStatus)
}
