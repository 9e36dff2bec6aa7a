package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/client"
)

// TestGetTCBBaselines: against a real attestd, SgxEnclave and TdxVm list
// "azuredefault" (selected, the test platforms' evaluation data number 17,
// released 90 days ago) then the number itself; the call needs the reader
// role, and types without baselines are refused with MAA's error.
func TestGetTCBBaselines(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	c := e.client(t, "", e.Reader, client.Validation{Issuer: e.URL})
	for _, typ := range []client.AttestationType{client.SgxEnclave, client.OpenEnclave, client.TdxVm} {
		t.Run(string(typ), func(t *testing.T) {
			bs, err := c.GetTCBBaselines(ctx, typ)
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != 2 {
				t.Fatalf("%d baselines, want azuredefault and 17: %+v", len(bs), bs)
			}
			for i, want := range []client.TCBBaseline{
				{Identifier: "azuredefault", EvaluationDataNumber: 17, Selected: true},
				{Identifier: "17", EvaluationDataNumber: 17},
			} {
				got := bs[i]
				if got.Identifier != want.Identifier || got.EvaluationDataNumber != want.EvaluationDataNumber || got.Selected != want.Selected {
					t.Errorf("baseline %d: %+v, want %+v", i, got, want)
				}
				// The fakes date their newest TCB level 90 days back.
				if age := time.Since(got.ReleaseDate); age < 89*24*time.Hour || age > 91*24*time.Hour {
					t.Errorf("baseline %d: release date %v, want about 90 days ago", i, got.ReleaseDate)
				}
				if got.MinimumPSWLinuxVersion != "" || got.MinimumPSWWindowsVersion != "" {
					t.Errorf("baseline %d: PSW versions %+v (attestd knows none)", i, got)
				}
			}
		})
	}

	anon := e.client(t, "", "", client.Validation{Issuer: e.URL})
	_, err := anon.GetTCBBaselines(ctx, client.SgxEnclave)
	wantError(t, err, 401, "Unauthorized")
	_, err = c.GetTCBBaselines(ctx, client.Tpm)
	wantError(t, err, 400, "InvalidParameter")
	_, err = c.GetTCBBaselines(ctx, "Nope")
	wantError(t, err, 400, "InvalidParameter")
}

// TestGetTCBBaselinesSelected: a policy selecting baseline 17 with
// x-ms-sgx-tcbidentifier moves the mark from azuredefault to 17, for
// SgxEnclave only; resetting the policy moves it back.
func TestGetTCBBaselinesSelected(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t, "", e.Contributor, client.Validation{Issuer: e.URL})
	selected := func(typ client.AttestationType) []string {
		t.Helper()
		bs, err := c.GetTCBBaselines(ctx, typ)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, b := range bs {
			if b.Selected {
				ids = append(ids, b.Identifier)
			}
		}
		return ids
	}
	pol := `version=1.1; configurationrules{ => issueproperty(type="x-ms-sgx-tcbidentifier", value="17"); }; authorizationrules{ => permit(); };`
	if _, err := c.SetPolicy(ctx, client.SgxEnclave, pol, nil); err != nil {
		t.Fatal(err)
	}
	if got := selected(client.SgxEnclave); len(got) != 1 || got[0] != "17" {
		t.Errorf("SgxEnclave under a policy selecting 17: selected %q", got)
	}
	if got := selected(client.OpenEnclave); len(got) != 1 || got[0] != "azuredefault" {
		t.Errorf("OpenEnclave (policy unchanged): selected %q", got)
	}
	if _, err := c.ResetPolicy(ctx, client.SgxEnclave, nil); err != nil {
		t.Fatal(err)
	}
	if got := selected(client.SgxEnclave); len(got) != 1 || got[0] != "azuredefault" {
		t.Errorf("SgxEnclave after reset: selected %q", got)
	}
}

// TestGetTCBBaselinesAPIVersion: the route exists only from api-version
// 2022-09-01-preview, so a client at the default 2020-10-01 sends
// 2025-06-01, and a client configured with another version sends that.
func TestGetTCBBaselinesAPIVersion(t *testing.T) {
	var got []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"tcbBaselines":[]}`))
	}))
	defer srv.Close()
	for _, v := range []string{"", "2022-09-01-preview"} {
		c, err := client.New(srv.URL, &client.Options{HTTPClient: srv.Client(), APIVersion: v})
		if err != nil {
			t.Fatal(err)
		}
		bs, err := c.GetTCBBaselines(context.Background(), client.SgxEnclave)
		if err != nil || len(bs) != 0 {
			t.Fatalf("api-version %q: %+v %v", v, bs, err)
		}
	}
	want := []string{"/tcbbaselines/SgxEnclave?api-version=2025-06-01", "/tcbbaselines/SgxEnclave?api-version=2022-09-01-preview"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("requests %q, want %q", got, want)
	}
}

func TestParseTCBBaselines(t *testing.T) {
	good := `{"tcbBaselines":[{"tcbIdentifier":"azuredefault","tcbEvaluationDataNumber":"17","tcbReleaseDate":"2024-03-13T00:00:00Z",` +
		`"minimumPswLinuxVersion":"2.22","minimumPswWindowsVersion":"2.20.100.4","isSelectedTcb":true},` +
		`{"tcbIdentifier":"16","tcbEvaluationDataNumber":16,"isSelectedTcb":false}]}`
	bs, err := client.ParseTCBBaselines([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []client.TCBBaseline{
		{Identifier: "azuredefault", EvaluationDataNumber: 17, ReleaseDate: time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC),
			MinimumPSWLinuxVersion: "2.22", MinimumPSWWindowsVersion: "2.20.100.4", Selected: true},
		{Identifier: "16", EvaluationDataNumber: 16},
	}
	if len(bs) != len(want) {
		t.Fatalf("%+v", bs)
	}
	for i := range want {
		if !bs[i].ReleaseDate.Equal(want[i].ReleaseDate) {
			t.Errorf("%d: release %v, want %v", i, bs[i].ReleaseDate, want[i].ReleaseDate)
		}
		bs[i].ReleaseDate, want[i].ReleaseDate = time.Time{}, time.Time{}
		if bs[i] != want[i] {
			t.Errorf("%d: %+v, want %+v", i, bs[i], want[i])
		}
	}

	for _, c := range []struct{ name, body, want string }{
		{"not JSON", `{`, "TCB baselines"},
		{"no array", `{}`, "no tcbBaselines"},
		{"null array", `{"tcbBaselines":null}`, "no tcbBaselines"},
		{"not an array", `{"tcbBaselines":{}}`, "TCB baselines"},
		{"no identifier", `{"tcbBaselines":[{"tcbEvaluationDataNumber":"1"}]}`, "no tcbIdentifier"},
		{"no number", `{"tcbBaselines":[{"tcbIdentifier":"1"}]}`, "missing"},
		{"negative number", `{"tcbBaselines":[{"tcbIdentifier":"1","tcbEvaluationDataNumber":"-1"}]}`, "non-negative"},
		{"signed number", `{"tcbBaselines":[{"tcbIdentifier":"1","tcbEvaluationDataNumber":"+1"}]}`, "non-negative"},
		{"fraction", `{"tcbBaselines":[{"tcbIdentifier":"1","tcbEvaluationDataNumber":1.5}]}`, "non-negative"},
		{"bool number", `{"tcbBaselines":[{"tcbIdentifier":"1","tcbEvaluationDataNumber":true}]}`, "non-negative"},
		{"bad date", `{"tcbBaselines":[{"tcbIdentifier":"1","tcbEvaluationDataNumber":"1","tcbReleaseDate":"March"}]}`, "tcbReleaseDate"},
		{"two selected", `{"tcbBaselines":[{"tcbIdentifier":"1","tcbEvaluationDataNumber":"1","isSelectedTcb":true},` +
			`{"tcbIdentifier":"2","tcbEvaluationDataNumber":"2","isSelectedTcb":true}]}`, "2 baselines are marked selected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := client.ParseTCBBaselines([]byte(c.body))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// FuzzParseTCBBaselines: the service's /tcbbaselines answer never panics
// the client, and an accepted list keeps the invariants ParseTCBBaselines
// promises.
func FuzzParseTCBBaselines(f *testing.F) {
	f.Add([]byte(`{"tcbBaselines":[{"tcbIdentifier":"azuredefault","tcbEvaluationDataNumber":"17","tcbReleaseDate":"2024-03-13T00:00:00Z","isSelectedTcb":true}]}`))
	f.Add([]byte(`{"tcbBaselines":[{"tcbIdentifier":"16","tcbEvaluationDataNumber":16}]}`))
	f.Add([]byte(`{"tcbBaselines":[]}`))
	f.Add([]byte(`{"tcbBaselines":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := client.ParseTCBBaselines(b)
		if err != nil {
			return
		}
		sel := 0
		for _, x := range bs {
			if x.Identifier == "" || x.EvaluationDataNumber < 0 {
				t.Fatalf("accepted %+v from %q", x, b)
			}
			if x.Selected {
				sel++
			}
		}
		if sel > 1 {
			t.Fatalf("accepted %d selected baselines from %q", sel, b)
		}
	})
}
