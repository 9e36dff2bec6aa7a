package pcs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/collateral"
	"github.com/attestd/attestd/collateral/pcs/pcstest"
	"github.com/attestd/attestd/testing/sgxplatform"
)

// TestGetTCBBaseline: a Request with TCBEvaluationDataNumber sends
// tcbEvaluationDataNumber=N (and not update, which PCS rejects beside it) on
// the TCB info and QE identity requests, checks the answers carry N, and maps
// PCS's 404/410 for an unknown or retired number to ErrNotFound.
func TestGetTCBBaseline(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	p, err := sgxplatform.New(sgxplatform.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c15, err := p.CollateralWith(func(o *sgxplatform.Options) { o.TCBEvaluationDataNumber = 15 })
	if err != nil {
		t.Fatal(err)
	}
	fake := &pcstest.Handler{Sets: []*collateral.Collateral{p.Collateral(), c15}}
	var lie bool // serve the standard documents whatever is asked
	fake.Override = func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Query().Get("tcbEvaluationDataNumber") {
		case "12":
			http.Error(w, "", http.StatusGone)
			return true
		}
		if lie && r.URL.Query().Has("tcbEvaluationDataNumber") {
			q := r.URL.Query()
			q.Del("tcbEvaluationDataNumber")
			r.URL.RawQuery = q.Encode()
			(&pcstest.Handler{Sets: fake.Sets}).ServeHTTP(w, r)
			return true
		}
		return false
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, RootCACRLURL: srv.URL + pcstest.RootCACRLPath, TCBUpdate: "early"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := collateral.Request{TEE: collateral.SGX, FMSPC: p.FMSPC(), CA: collateral.CAProcessor}

	// queries returns the query strings of the TCB info and QE identity
	// requests made since the call before.
	seenBefore := 0
	queries := func() (tcb, qe url.Values) {
		all := fake.Requests()
		for _, s := range all[seenBefore:] {
			q, _ := url.ParseQuery(s.Query)
			switch {
			case strings.HasSuffix(s.Path, "/tcb"):
				tcb = q
			case strings.HasSuffix(s.Path, "/qe/identity"):
				qe = q
			}
		}
		seenBefore = len(all)
		return tcb, qe
	}

	for _, n := range []int{0, 17, 15} {
		r := req
		r.TCBEvaluationDataNumber = n
		got, err := c.Get(ctx, r)
		if err != nil {
			t.Fatalf("number %d: %v", n, err)
		}
		info, err := got.Inspect()
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if n == 0 {
			want = 17 // the first set: PCS's standard answer
		}
		if info.TCBInfo.TCBEvaluationDataNumber != want || info.QEIdentity.TCBEvaluationDataNumber != want {
			t.Errorf("number %d: got TCB info %d, QE identity %d", n, info.TCBInfo.TCBEvaluationDataNumber, info.QEIdentity.TCBEvaluationDataNumber)
		}
		tq, qq := queries()
		for name, q := range map[string]url.Values{"tcb": tq, "qe/identity": qq} {
			if n == 0 {
				if q.Has("tcbEvaluationDataNumber") || q.Get("update") != "early" {
					t.Errorf("default: %s query %v, want update=early only", name, q)
				}
				continue
			}
			if q.Get("tcbEvaluationDataNumber") != strconv.Itoa(n) || q.Has("update") {
				t.Errorf("number %d: %s query %v, want tcbEvaluationDataNumber=%d and no update", n, name, q, n)
			}
		}
	}
	for _, n := range []int{11, 12} { // 404, 410
		r := req
		r.TCBEvaluationDataNumber = n
		if _, err := c.Get(ctx, r); !errors.Is(err, collateral.ErrNotFound) {
			t.Errorf("number %d: %v, want ErrNotFound", n, err)
		}
	}
	lie = true
	r := req
	r.TCBEvaluationDataNumber = 15
	if _, err := c.Get(ctx, r); !errors.Is(err, collateral.ErrMalformed) || !strings.Contains(err.Error(), "TCB evaluation data number 15, got number 17") {
		t.Errorf("server ignoring the number: %v", err)
	}
	r.TCBEvaluationDataNumber = -1
	if _, err := c.Get(ctx, r); err == nil {
		t.Error("negative number accepted")
	}
}
