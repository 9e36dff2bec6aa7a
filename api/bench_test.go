package api

import (
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkHTTPAttest measures one attest call through the whole HTTP stack
// (TLS keep-alive connection, routing, decoding, fake verifier, default
// policy, RS256 token) — the in-process pipeline cost is BenchmarkAttest in
// package instance.
func BenchmarkHTTPAttest(b *testing.B) {
	e := newAPIEnvTB(b, nil)
	rt := []byte("runtime")
	h := sha256.Sum256(rt)
	body := `{"quote":"` + b64u.EncodeToString(append(h[:], make([]byte, 32)...)) + `","runtimeData":{"data":"` + b64u.EncodeToString(rt) + `","dataType":"Binary"}}`
	client := e.srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		res, err := client.Post(e.base+"/attest/SgxEnclave?api-version=2020-10-01", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}
