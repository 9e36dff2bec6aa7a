package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/testenv"
)

func TestResolveConfig(t *testing.T) {
	dir := t.TempDir()
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pm"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	os.WriteFile(filepath.Join(dir, "pm.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "not.pem"), []byte("hello"), 0o644)

	tests := []struct {
		name    string
		config  string
		listen  string
		want    []resolvedInstance // Name, Prefix, Mode, URL compared
		wantErr string
	}{
		{"no file: default AAD with dev identity", "", "127.0.0.1:8443",
			[]resolvedInstance{{Name: "default", Prefix: "", Mode: "AAD", URL: "https://127.0.0.1:8443"}}, ""},
		{"unspecified listen host", "", "0.0.0.0:9000",
			[]resolvedInstance{{Name: "default", Mode: "AAD", URL: "https://localhost:9000"}}, ""},
		{"several instances", `{"instances":[{"name":"default","auth":{"dev":true}},
			{"name":"t1","mode":"isolated","policy_certificates":["pm.pem"],"auth":{"dev":true}},
			{"name":"s","prefix":"/shared/","mode":"Shared","url":"https://attest.example.com/s/"}]}`, "[::1]:8443",
			[]resolvedInstance{{Name: "default", Mode: "AAD", URL: "https://[::1]:8443"},
				{Name: "t1", Prefix: "/tenants/t1", Mode: "Isolated", URL: "https://[::1]:8443/tenants/t1"},
				{Name: "s", Prefix: "/shared", Mode: "Shared", URL: "https://attest.example.com/s"}}, ""},
		{"unknown field", `{"instances":[],"lissten":"x"}`, "127.0.0.1:1", nil, "unknown field"},
		{"duplicate name", `{"instances":[{"name":"a","auth":{"dev":true}},{"name":"a","auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "used twice"},
		{"duplicate prefix", `{"instances":[{"name":"a","prefix":"/x","auth":{"dev":true}},{"name":"b","prefix":"/x","auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "already used"},
		{"bad mode", `{"instances":[{"name":"a","mode":"Open","auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "unknown instance mode"},
		{"isolated without certs", `{"instances":[{"name":"a","mode":"Isolated","auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "policy_certificates"},
		{"certs on AAD", `{"instances":[{"name":"a","policy_certificates":["pm.pem"],"auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "only apply to Isolated"},
		{"cert file without PEM", `{"instances":[{"name":"a","mode":"Isolated","policy_certificates":["not.pem"],"auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "no PEM"},
		{"AAD without auth", `{"instances":[{"name":"a"}]}`, "127.0.0.1:1", nil, "needs an \"auth\" block"},
		{"two auth sources", `{"instances":[{"name":"a","auth":{"dev":true,"oidc_issuer":"https://x"}}]}`, "127.0.0.1:1", nil, "exactly one"},
		{"bad name", `{"instances":[{"name":"a/b","auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "must match"},
		{"ES256 attestation tokens", `{"instances":[{"name":"default","token_algorithm":"ES256","auth":{"dev":true}}]}`, "127.0.0.1:1",
			[]resolvedInstance{{Name: "default", Mode: "AAD", URL: "https://127.0.0.1:1", TokenAlgorithm: "ES256"}}, ""},
		{"unknown token algorithm", `{"instances":[{"name":"a","token_algorithm":"HS256","auth":{"dev":true}}]}`, "127.0.0.1:1", nil, "token_algorithm"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.config != "" {
				path = filepath.Join(dir, "c"+string(rune('a'+i))+".json")
				os.WriteFile(path, []byte(tc.config), 0o644)
			}
			cfg, err := LoadConfig(path)
			var got []resolvedInstance
			if err == nil {
				got, err = cfg.resolve(tc.listen)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d instances", len(got))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Name != w.Name || g.Prefix != w.Prefix || g.Mode != w.Mode || g.URL != w.URL || (w.TokenAlgorithm != "" && g.TokenAlgorithm != w.TokenAlgorithm) {
					t.Errorf("instance %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, created, err := ensureSelfSignedTLS(dir, time.Now())
	if err != nil || !created {
		t.Fatalf("%v %v", created, err)
	}
	if cert != filepath.Join(dir, "tls", "cert.pem") {
		t.Fatal(cert)
	}
	b1, _ := os.ReadFile(cert)
	_, _, created, err = ensureSelfSignedTLS(dir, time.Now())
	if err != nil || created {
		t.Fatal("second call must reuse the certificate")
	}
	b2, _ := os.ReadFile(cert)
	if !bytes.Equal(b1, b2) {
		t.Fatal("certificate changed")
	}
	// A key others can read is refused, not silently served.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ensureSelfSignedTLS(dir, time.Now()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable TLS key accepted: %v", err)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b1)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := c.VerifyHostname(host); err != nil {
			t.Errorf("SAN %s: %v", host, err)
		}
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode())
	}
}

// server runs serveCmd in the background and stops it gracefully.
type server struct {
	base   string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	out    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServing(t, nil, append([]string{"--log-level", "warn"}, args...)...)
}

// startServing runs serveCmd on a free port until the test stops it, with
// the log on logs (nil: with stdout in s.out), and waits until it accepts
// connections.
func startServing(t *testing.T, logs *syncBuffer, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	if logs == nil {
		logs = s.out
	}
	ready := make(chan readyInfo, 1)
	go func() {
		s.done <- serveCmd(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), s.out, logs, func(r readyInfo) { ready <- r })
	}()
	select {
	case r := <-ready:
		pemb, err := os.ReadFile(r.TLSCert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pemb)
		s.base = "https://" + r.Addr
		s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	case err := <-s.done:
		t.Fatalf("server did not start: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatal("server start timed out")
	}
	return s
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
}

func (s *server) do(t *testing.T, method, path, bearer, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestServeRestart starts the real server command, changes a policy with a
// token from the token command, stops it gracefully, starts it again on the
// same data directory and finds the same policy, TLS certificate and
// signing key.
func TestServeRestart(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, "--data", data)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "--data", data, "--role", "contributor"}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := lastLine(out.String())
	const text = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"
	if code, b := s.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", tok, text); code != 200 {
		t.Fatalf("PUT %d %s", code, b)
	}
	_, certs1 := s.do(t, "GET", "/certs", "", "")
	_, pol1 := s.do(t, "GET", "/policies/SgxEnclave?api-version=2020-10-01", tok, "")
	tls1, _ := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if !strings.Contains(s.out.String(), filepath.Join(data, "tls", "cert.pem")) {
		t.Errorf("TLS certificate path not printed:\n%s", s.out)
	}
	s.stop(t)

	s2 := startServer(t, "--data", data)
	defer s2.stop(t)
	tls2, _ := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
	if !bytes.Equal(tls1, tls2) {
		t.Fatal("TLS certificate regenerated on restart")
	}
	_, certs2 := s2.do(t, "GET", "/certs", "", "")
	if !bytes.Equal(certs1, certs2) {
		t.Fatal("signing keys changed on restart")
	}
	code, pol2 := s2.do(t, "GET", "/policies/SgxEnclave?api-version=2020-10-01", tok, "")
	if code != 200 {
		t.Fatalf("GET after restart %d %s", code, pol2)
	}
	policyOf := func(b []byte) string {
		var r struct{ Token string }
		json.Unmarshal(b, &r)
		p, _ := base64.RawURLEncoding.DecodeString(strings.Split(r.Token, ".")[1])
		var c map[string]any
		json.Unmarshal(p, &c)
		return c["x-ms-policy"].(string)
	}
	if policyOf(pol1) != policyOf(pol2) {
		t.Fatal("policy lost on restart")
	}
	if code, _ := s2.do(t, "GET", "/healthz", "", ""); code != 200 {
		t.Fatal("healthz")
	}
}

// TestGracefulShutdown: a request in flight when shutdown starts completes.
func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, "--data", t.TempDir())
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"), s.client.Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Send headers of a body that has not fully arrived, then shut down.
	body := `{"quote":"AAAA"}`
	io.WriteString(conn, "POST /attest/SgxEnclave HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body[:5])
	time.Sleep(100 * time.Millisecond)
	s.cancel()
	time.Sleep(100 * time.Millisecond)
	io.WriteString(conn, body[5:])
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request did not complete: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 && resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"token", "--help"}, {"verify", "--help"}, {"keys", "--help"}, {"keys", "rotate", "--help"}, {"help"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		all := out.String() + errb.String()
		for _, want := range map[string][]string{"--help": {"-listen", "-data", "-config", "-tls-cert"}, "serve": {"-listen", "-data", "-config", "-tls-cert"}, "token": {"-role", "-instance", "-data"}, "help": {"serve", "token", "verify", "keys"}, "verify": {"-evidence", "-collateral"}}[args[0]] {
			if !strings.Contains(all, want) {
				t.Errorf("%v help lacks %s:\n%s", args, want, all)
			}
		}
	}
	if code := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	if code := run(context.Background(), []string{"token", "--data", t.TempDir(), "--role", "admin"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("bad role exit %d", code)
	}
}

// TestListenFailure: a busy address fails fast with an error.
func TestListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = serveCmd(context.Background(), []string{"--listen", ln.Addr().String(), "--data", t.TempDir()}, io.Discard, io.Discard, nil)
	if err == nil {
		t.Fatal("listening on a busy address succeeded")
	}
}

func TestConfiguredTLSAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	// A configured certificate is served instead of the self-signed one.
	cert, key, _, err := ensureSelfSignedTLS(filepath.Join(dir, "elsewhere"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "attestd.json")
	os.WriteFile(cfg, []byte(`{"listen":"127.0.0.1:1","data":"from-file","tls":{"cert":"`+cert+`","key":"`+key+`"}}`), 0o644)
	data := filepath.Join(dir, "data")
	s := startServer(t, "--config", cfg, "--data", data) // --listen 127.0.0.1:0 beats the file's listen
	defer s.stop(t)
	if _, err := os.Stat(filepath.Join(data, "tls", "cert.pem")); err == nil {
		t.Fatal("self-signed certificate created although one was configured")
	}
	if code, _ := s.do(t, "GET", "/healthz", "", ""); code != 200 { // the client trusts only the configured cert
		t.Fatal("healthz over the configured certificate")
	}

	// Precedence: flag > environment > file > default.
	t.Setenv("ATTESTD_DATA", "from-env")
	o, _, err := parseServeFlags([]string{"--config", cfg}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Data != "from-env" || o.Listen != "127.0.0.1:1" || o.TLSCert != cert {
		t.Fatalf("%+v", o)
	}
	o, _, _ = parseServeFlags([]string{"--config", cfg, "--data", "from-flag"}, io.Discard)
	if o.Data != "from-flag" {
		t.Fatalf("%+v", o)
	}
	t.Setenv("ATTESTD_DATA", "")
	o, _, _ = parseServeFlags([]string{"--config", cfg}, io.Discard)
	if o.Data != filepath.Join(dir, "from-file") {
		t.Fatalf("file data dir not relative to the config file: %+v", o)
	}
	o, _, _ = parseServeFlags(nil, io.Discard)
	if o.Data != DefaultData || o.Listen != DefaultListen {
		t.Fatalf("defaults %+v", o)
	}
	if _, _, err := parseServeFlags([]string{"--tls-cert", cert}, io.Discard); err == nil {
		t.Fatal("certificate without key accepted")
	}
}

// TestVerifyCommand: "attestd verify" verifies a real quote offline.
func TestVerifyCommand(t *testing.T) {
	quote := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote")
	coll := testenv.Shared(t, "vectors/dcap-qvl/sample/sgx_quote_collateral.json")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"verify", "--type", "SgxEnclave", "--evidence", quote, "--collateral", coll, "--at", "2025-07-01T00:00:00Z"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "x-ms-sgx-mrenclave") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if code := run(context.Background(), []string{"verify", "--type", "SgxEnclave", "--evidence", quote, "--collateral", coll, "--at", "2030-01-01T00:00:00Z"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("expired collateral: exit %d", code)
	}
}

// TestKeyRotation: "attestd keys rotate" beside a running server. A staged
// rotation is published in /certs while the old key keeps signing; "rotate
// --now" makes the newest key sign at once; the superseded keys stay in
// /certs, listed as retiring.
func TestKeyRotation(t *testing.T) {
	data := t.TempDir()
	s := startServer(t, "--data", data, "--key-reload-interval", "50ms")
	defer s.stop(t)
	kids := func() []string {
		_, b := s.do(t, "GET", "/certs", "", "")
		var jwks struct{ Keys []struct{ Kid string } }
		json.Unmarshal(b, &jwks)
		var out []string
		for _, k := range jwks.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	tokenKID := func() string {
		var tokOut bytes.Buffer
		run(context.Background(), []string{"token", "--data", data, "--role", "reader"}, &tokOut, io.Discard)
		_, pol := s.do(t, "GET", "/policies/SgxEnclave?api-version=2020-10-01", lastLine(tokOut.String()), "")
		var r struct{ Token string }
		json.Unmarshal(pol, &r)
		hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(r.Token, ".")[0])
		var h struct{ Kid string }
		json.Unmarshal(hb, &h)
		return h.Kid
	}
	waitKeys := func(n int) []string {
		deadline := time.Now().Add(10 * time.Second)
		var got []string
		for time.Now().Before(deadline) {
			if got = kids(); len(got) == n {
				return got
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("/certs has %v, want %d keys", got, n)
		return nil
	}
	before := kids() // the active key and its standby
	if len(before) != 2 {
		t.Fatalf("keys before rotation: %v", before)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keys", "rotate", "--data", data, "--key-prepublish", "1h"}, &out, &errb); code != 0 {
		t.Fatalf("rotate: %d %s", code, errb.String())
	}
	for _, re := range []string{regexp.QuoteMeta(before[0]) + `\s+active`, regexp.QuoteMeta(before[1]) + `\s+pending`, `\s+standby\s`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Fatalf("staged rotate output lacks %s:\n%s", re, out.String())
		}
	}
	staged := waitKeys(3) // active, new standby, pending (the old standby)
	if staged[0] != before[0] || staged[2] != before[1] || tokenKID() != before[0] {
		t.Fatalf("pending key signs before its time: /certs %v, before %v", staged, before)
	}
	out.Reset()
	if code := run(context.Background(), []string{"keys", "rotate", "--now", "--data", data, "--key-retire-after", "1h"}, &out, &errb); code != 0 {
		t.Fatalf("rotate --now: %d %s", code, errb.String())
	}
	if !regexp.MustCompile(regexp.QuoteMeta(before[0]) + `\s+retiring`).MatchString(out.String()) {
		t.Fatalf("rotate --now output:\n%s", out.String())
	}
	// The new standby signs at once; the superseded pending key never
	// signed and left /certs at once.
	deadline := time.Now().Add(10 * time.Second)
	var after []string
	for time.Now().Before(deadline) {
		if after = kids(); len(after) == 3 && after[0] != before[0] {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(after) != 3 || after[0] != staged[1] || after[2] != before[0] || slices.Contains(after, before[1]) || tokenKID() != after[0] {
		t.Fatalf("after rotate --now: /certs %v (staged %v), token kid %s", after, staged, tokenKID())
	}
	if code := run(context.Background(), []string{"keys", "list", "--data", data, "--instance", "nope"}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("unknown instance: exit %d", code)
	}
}

// TestREADMEConfig keeps the README's configuration example valid: it must
// decode (no unknown fields) and resolve once its files exist.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```json\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no JSON configuration example")
	}
	dir := t.TempDir()
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pm"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	os.WriteFile(filepath.Join(dir, "t1-policy-signer.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	path := filepath.Join(dir, "attestd.json")
	os.WriteFile(path, []byte(block), 0o644)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.resolve("0.0.0.0:8443")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].URL != "https://attest.example.com/tenants/t1" || got[2].Prefix != "/shared" || got[0].URL != "https://localhost:8443" {
		t.Fatalf("%+v", got)
	}
}
