package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/store/sqlite"
	"github.com/attestd/attestd/store/storetest"
	"github.com/attestd/attestd/testing/sgxplatform"
	"github.com/attestd/attestd/token"
)

// startServerSplit is startServer with stdout and stderr (the log) kept
// apart, so that the log can be parsed line by line.
func startServerSplit(t *testing.T, args ...string) (s *server, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	return startServing(t, logs, args...), logs
}

// metricValue finds one sample in a Prometheus text exposition: name with
// exactly the labels given (any order), or -1 when absent.
func metricValue(t *testing.T, text, name string, labels map[string]string) float64 {
	t.Helper()
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)
	pair := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
	for _, l := range strings.Split(text, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || m[1] != name {
			continue
		}
		got := map[string]string{}
		for _, p := range pair.FindAllStringSubmatch(m[2], -1) {
			got[p[1]] = p[2]
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", l, err)
		}
		return v
	}
	return -1
}

func scrape(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

// TestMetricsLogsAndAudit runs the real server with JSON logs, attests a
// good quote, a quote with a flipped bit (check named) and an anonymous
// policy write (refused), changes a policy, then checks that /metrics
// counted each, that every log line is a JSON object (the refusal naming its
// check and request id), that /readyz and /version answer, and that the
// audit route pages.
func TestMetricsLogsAndAudit(t *testing.T) {
	dir := t.TempDir()
	quote := writePlatform(t, dir, sgxplatform.Options{Now: time.Now()})
	cfg := `{"collateral": {"type": "bundle", "path": "collateral.json"}, "sgx": {"roots": ["root.pem"]}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	s, logs := startServerSplit(t, "--config", filepath.Join(dir, "config.json"), "--data", data, "--log-format", "json")
	defer s.stop(t)

	attest := func(q []byte) (int, []byte) {
		return s.do(t, "POST", "/attest/SgxEnclave?api-version=2020-10-01", "", `{"quote": "`+base64.RawURLEncoding.EncodeToString(q)+`"}`)
	}
	if code, b := attest(quote); code != 200 {
		t.Fatalf("good quote: %d %s", code, b)
	}
	bad := bytes.Clone(quote)
	bad[len(bad)-40] ^= 1
	code, b := attest(bad)
	if code != 400 {
		t.Fatalf("flipped quote: %d %s", code, b)
	}
	if code, b := s.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", "", "version=1.0; authorizationrules{=>permit();};"); code != 401 {
		t.Fatalf("anonymous policy write: %d %s", code, b)
	}
	var out, errb bytes.Buffer
	if c := run(context.Background(), []string{"token", "--data", data, "--role", "contributor"}, &out, &errb); c != 0 {
		t.Fatalf("token: %d %s", c, errb.String())
	}
	tok := lastLine(out.String())
	for i := range 3 {
		policy := fmt.Sprintf("version=1.0; authorizationrules{=>permit();}; issuancerules{=>issue(type=\"n\", value=%d);};", i)
		if code, b := s.do(t, "PUT", "/policies/SgxEnclave?api-version=2020-10-01", tok, policy); code != 200 {
			t.Fatalf("policy set %d: %d %s", i, code, b)
		}
	}

	text := scrape(t, s.client, s.base+"/metrics")
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"attestd_attestations_total", map[string]string{"instance": "default", "type": "SgxEnclave", "outcome": "ok", "check": "none"}, 1},
		{"attestd_admin_changes_total", map[string]string{"instance": "default", "action": "policy.set", "outcome": "Unauthorized"}, 1},
		{"attestd_admin_changes_total", map[string]string{"instance": "default", "action": "policy.set", "outcome": "ok"}, 3},
		{"attestd_requests_total", map[string]string{"instance": "default", "operation": "policy", "code": "401"}, 1},
		{"attestd_attestation_duration_seconds_count", map[string]string{"instance": "default", "type": "SgxEnclave", "outcome": "ok"}, 1},
		{"attestd_attest_admitted_total", map[string]string{}, 2},
		{"attestd_signing_keys", map[string]string{"instance": "default", "state": "active"}, 1},
	} {
		if got := metricValue(t, text, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The refusal is counted under the check its error names.
	refused := regexp.MustCompile(`attestd_attestations_total\{check="([^"]+)",instance="default",outcome="InvalidParameter",type="SgxEnclave"\} 1`).FindStringSubmatch(text)
	if refused == nil || refused[1] == "none" || !strings.Contains(string(b), refused[1]) {
		t.Errorf("refused attestation not counted by its check (answer %s):\n%s", b, grep(text, "attestd_attestations_total"))
	}

	// JSON logs: every line an object; the refusal names check and request id.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sawRefusal := false
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, sc.Text())
		}
		if rec["msg"] == "request" && rec["status"] == float64(400) {
			sawRefusal = true
			if rec["check"] != refused[1] || rec["request_id"] == "" || rec["code"] != "InvalidParameter" {
				t.Errorf("refusal log line lacks check/request_id/code: %v", rec)
			}
		}
	}
	if !sawRefusal {
		t.Errorf("no log line for the refused attestation:\n%s", logs)
	}

	// /readyz and /version.
	if code, b := s.do(t, "GET", "/readyz", "", ""); code != 200 || !strings.Contains(string(b), `"ready"`) {
		t.Errorf("/readyz: %d %s", code, b)
	}
	var v struct{ Version, GoVersion string }
	if code, b := s.do(t, "GET", "/version", "", ""); code != 200 || json.Unmarshal(b, &v) != nil || v.GoVersion == "" || v.Version == "" {
		t.Errorf("/version: %d %s", code, b)
	}

	// The audit route pages: the first signing key's creation and three
	// policy sets, two per page.
	if code, b := s.do(t, "GET", "/audit?limit=2", "", ""); code != 401 {
		t.Errorf("anonymous audit read: %d %s", code, b)
	}
	var p1, p2 struct {
		Entries []struct {
			ID                  int64
			Actor, Action, Hash string
		}
		NextBefore int64
	}
	code, b = s.do(t, "GET", "/audit?limit=2", tok, "")
	if code != 200 || json.Unmarshal(b, &p1) != nil || len(p1.Entries) != 2 || p1.NextBefore == 0 {
		t.Fatalf("audit page 1: %d %s", code, b)
	}
	code, b = s.do(t, "GET", fmt.Sprintf("/audit?limit=2&before=%d", p1.NextBefore), tok, "")
	if code != 200 || json.Unmarshal(b, &p2) != nil || len(p2.Entries) != 2 || p2.NextBefore != 0 || p2.Entries[1].Action != "keys.create" {
		t.Fatalf("audit page 2: %d %s", code, b)
	}
	if e := p2.Entries[0]; e.ID >= p1.Entries[1].ID || e.Action != "policy.set" || e.Hash == "" || !strings.HasPrefix(e.Actor, "sub:") {
		t.Errorf("audit page 2 entry = %+v (page 1 %+v)", e, p1.Entries)
	}
	if code, b := s.do(t, "GET", "/audit?limit=0", tok, ""); code != 400 {
		t.Errorf("audit limit=0: %d %s", code, b)
	}

	// attestd audit list reads the same trail from the database.
	out.Reset()
	errb.Reset()
	if c := run(context.Background(), []string{"audit", "list", "--data", data, "--json"}, &out, &errb); c != 0 {
		t.Fatalf("audit list: %d %s", c, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("audit list --json printed %d lines, want 4:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		var e auditJSON
		want := "policy.set"
		if i == len(lines)-1 {
			want = "keys.create"
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Instance != "default" || e.Action != want {
			t.Errorf("audit list line %q: %+v %v", l, e, err)
		}
	}
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsListen serves /metrics on a separate plain-HTTP address and
// not on the HTTPS listener.
func TestMetricsListen(t *testing.T) {
	s, _ := startServerSplit(t, "--data", t.TempDir(), "--metrics-listen", "127.0.0.1:0", "--log-level", "warn")
	defer s.stop(t)
	m := regexp.MustCompile(`metrics: +(http://\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no metrics URL in the output:\n%s", s.out)
	}
	if text := scrape(t, http.DefaultClient, m[1]); metricValue(t, text, "attestd_signing_keys", map[string]string{"instance": "default", "state": "active"}) != 1 {
		t.Errorf("separate /metrics lacks the signing key gauge:\n%s", grep(text, "attestd_"))
	}
	if code, _ := s.do(t, "GET", "/metrics", "", ""); code != 404 {
		t.Errorf("/metrics on the HTTPS listener: %d, want 404 when --metrics-listen is set", code)
	}
}

// TestReadiness: /readyz is 503 naming the check when the store fails or a
// signing key has expired, 200 otherwise.
func TestReadiness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "attestd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	ks, err := token.OpenKeySet(filepath.Join(dir, "keys"), "https://localhost", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		fail   bool
		at     time.Time
		status int
		check  string
	}{
		{"ready", false, now, 200, ""},
		{"store gone", true, now, 503, "store"},
		{"signing key expired", false, now.Add(100 * 365 * 24 * time.Hour), 503, "signing_key/default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := storetest.NewFaulty(db)
			if tc.fail {
				f.Fail(storetest.MethodAuditPage, errors.New("connection refused"))
			}
			rd := &readiness{store: f, instances: []string{"default"}, keys: []*token.KeySet{ks}, now: func() time.Time { return tc.at }}
			rec := &recorder{h: http.Header{}}
			rd.ServeHTTP(rec, (&http.Request{Method: "GET"}).WithContext(ctx))
			var rep readyReport
			if err := json.Unmarshal(rec.body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rec.status != tc.status {
				t.Fatalf("status %d, want %d: %+v", rec.status, tc.status, rep)
			}
			for name, v := range rep.Checks {
				if (name == tc.check) == (v == "ok") {
					t.Errorf("check %s = %q", name, v)
				}
			}
		})
	}
}

type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// TestTokenNeedsIdentity: "attestd token" on a directory without a
// development identity fails (a typo would otherwise print a token no
// server trusts) unless --create is given.
func TestTokenNeedsIdentity(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if c := run(context.Background(), []string{"token", "--data", dir}, &out, &errb); c != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "no development identity") {
		t.Fatalf("token without identity: exit %d, out %q, err %q", c, out.String(), errb.String())
	}
	if c := run(context.Background(), []string{"token", "--data", dir, "--create"}, &out, &errb); c != 0 || strings.Count(lastLine(out.String()), ".") != 2 {
		t.Fatalf("token --create: exit %d, out %q, err %q", c, out.String(), errb.String())
	}
	out.Reset()
	if c := run(context.Background(), []string{"token", "--data", dir}, &out, &errb); c != 0 {
		t.Fatalf("token after --create: exit %d %s", c, errb.String())
	}
}

// TestConfigErrorPosition: broken configuration JSON is reported with its
// line and column, not only "unexpected EOF".
func TestConfigErrorPosition(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"truncated", "{\n  \"listen\": \"127.0.0.1:8443\",\n  \"instances\": [\n", "line 4, column 1: the JSON ends early"},
		{"bad token", "{\n  \"listen\": 127.0.0.1\n}", "line 2, column 18"},
		{"unknown field", "{\n  \"listen\": \"x\",\n    \"lisen\": \"y\"\n}", "line 3, column 5: json: unknown field \"lisen\""},
		{"wrong type", "{\n  \"instances\": [{\"name\": \"a\",\n \"mode\": 5}]\n}", "line 3, column 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.json")
			if err := os.WriteFile(f, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
