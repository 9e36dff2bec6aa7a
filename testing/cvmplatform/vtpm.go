package cvmplatform

import (
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/attestd/attestd/testing/swtpm"
	"github.com/attestd/attestd/tpmclient"
)

// VTPM is a software TPM set up the way an Azure vTPM looks to a guest:
// the Secure Boot log of BootEvents measured into its PCRs and an RSA
// attestation key loaded. The AzureGuest tests of the client, the CLI and
// the verifier all start from this state, so it is made in one place.
type VTPM struct {
	// TPM is the connection to the software TPM.
	TPM transport.TPM
	// Events are the measured events; tpmclient.EncodeLog(Events) is the
	// matching TCG log.
	Events []tpmclient.Event
	// AK is the transient RSA attestation key. It needs no flushing: the
	// software TPM is stopped when the test ends.
	AK *tpmclient.Key
}

// StartVTPM starts a swtpm for tb (skipped, or failed under CI, where
// swtpm is missing; see swtpm.Start), measures BootEvents(dbCert) and
// creates an RSA AK.
func StartVTPM(ctx context.Context, tb testing.TB, dbCert []byte) *VTPM {
	tb.Helper()
	tr := swtpm.Start(tb).Transport()
	events, err := BootEvents(dbCert)
	if err != nil {
		tb.Fatal(err)
	}
	if err := tpmclient.Measure(ctx, tr, events); err != nil {
		tb.Fatal(err)
	}
	ak, err := tpmclient.CreateAK(ctx, tr, tpmclient.RSA)
	if err != nil {
		tb.Fatal(err)
	}
	return &VTPM{TPM: tr, Events: events, AK: ak}
}
