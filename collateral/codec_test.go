package collateral_test

import (
	"errors"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/sourcetest"
)

func TestRecordRoundTrip(t *testing.T) {
	fx := sourcetest.NewDCAPFixture(t, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	baseline := fx.Served
	baseline.TCBEvaluationDataNumber = 17
	for _, k := range []collateral.Request{fx.Served, baseline} {
		b, err := collateral.EncodeRecord(collateral.DCAPCodec, k, fx.Sets[fx.Served])
		if err != nil {
			t.Fatal(err)
		}
		if fam, ok := collateral.PeekRecord(b); !ok || fam != "intel-dcap" {
			t.Errorf("PeekRecord = %q, %v", fam, ok)
		}
		gk, d, w, err := collateral.DecodeRecord(collateral.DCAPCodec, b)
		if err != nil {
			t.Fatal(err)
		}
		if gk != k || !d.Equal(fx.Sets[fx.Served]) || !w.NotAfter.Equal(fx.Now.Add(29*24*time.Hour)) || w.Final {
			t.Errorf("DecodeRecord = %v, window %+v", gk, w)
		}
	}
	// A set filed under a key it does not answer is refused.
	b, _ := collateral.EncodeRecord(collateral.DCAPCodec, fx.Expired, fx.Sets[fx.Served])
	if _, _, _, err := collateral.DecodeRecord(collateral.DCAPCodec, b); !errors.Is(err, collateral.ErrMalformed) {
		t.Errorf("mislabelled record: %v", err)
	}
	// Key names round trip and are canonical.
	for _, name := range []string{"sgx-00a067110000-processor", "tdx-b0c06f000000-platform-tcbeval17"} {
		k, err := collateral.DCAPCodec.ParseKeyName(name)
		if err != nil || collateral.DCAPCodec.KeyName(k) != name {
			t.Errorf("ParseKeyName(%q) = %v, %v", name, k, err)
		}
	}
	for _, bad := range []string{"sgx-00A067110000-processor", "sev-00a067110000-processor", "sgx-00a067110000-processor-tcbeval0", "../x"} {
		if _, err := collateral.DCAPCodec.ParseKeyName(bad); err == nil {
			t.Errorf("ParseKeyName(%q) accepted", bad)
		}
	}
}

func TestErrorClasses(t *testing.T) {
	ue := &collateral.UnavailableError{Source: "kds test", Status: 429, RetryAfter: time.Minute, Err: errors.New("slow down")}
	wrapped := errors.Join(errors.New("context"), ue)
	if !errors.Is(wrapped, collateral.ErrUnavailable) || !collateral.Transient(wrapped) || !ue.RateLimited() {
		t.Error("UnavailableError is not ErrUnavailable through a wrap")
	}
	if collateral.Transient(collateral.ErrNotFound) || collateral.Transient(collateral.ErrMalformed) {
		t.Error("not found / malformed are transient")
	}
	if !errors.Is(collateral.ErrInvalid, collateral.ErrMalformed) {
		t.Error("ErrInvalid is not ErrMalformed")
	}
	if got := ue.Error(); got != "collateral unavailable from kds test (HTTP 429, retry after 1m0s): slow down" {
		t.Errorf("Error() = %q", got)
	}
}

// FuzzDecodeRecord: the on-disk codec reads untrusted bytes (a cache
// directory anyone with write access may have changed); it never panics,
// and whatever it accepts re-encodes to a record that decodes to the same.
func FuzzDecodeRecord(f *testing.F) {
	fx := sourcetest.NewDCAPFixture(f, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	for k, c := range fx.Sets {
		b, err := collateral.EncodeRecord(collateral.DCAPCodec, k, c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"attestdCollateralRecord":1,"family":"intel-dcap","key":"sgx-00a067110000-processor","document":"e30="}`))
	f.Add([]byte(`{"attestdCollateralRecord":1,"family":"amd-kds-vcek","key":"x","document":""}`))
	f.Add([]byte(`{"tcb_info":"{}"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, d, _, err := collateral.DecodeRecord(collateral.DCAPCodec, b)
		if err != nil {
			return
		}
		b2, err := collateral.EncodeRecord(collateral.DCAPCodec, k, d)
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		k2, d2, _, err := collateral.DecodeRecord(collateral.DCAPCodec, b2)
		if err != nil || k2 != k || !d2.Equal(d) {
			t.Fatalf("round trip changed the record: %v", err)
		}
	})
}
