package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestRequestIDOnInstanceLogLines: the instance's own log line about a
// policy change carries the request_id the client got in x-ms-request-id,
// as the access log line does, and no line names request_id twice.
func TestRequestIDOnInstanceLogLines(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s, logs := startServerSplit(t, "--data", data, "--log-format", "json")
	defer s.stop(t)
	var out, errb bytes.Buffer
	if c := run(context.Background(), []string{"token", "--data", data, "--role", "contributor"}, &out, &errb); c != 0 {
		t.Fatalf("token: %d %s", c, errb.String())
	}
	req, _ := http.NewRequest("PUT", s.base+"/policies/SgxEnclave?api-version=2020-10-01", strings.NewReader("version=1.0; authorizationrules{=>permit();};"))
	req.Header.Set("Authorization", "Bearer "+lastLine(out.String()))
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	rid := res.Header.Get("x-ms-request-id")
	if res.StatusCode != 200 || len(rid) != 32 {
		t.Fatalf("policy set: %d, request id %q", res.StatusCode, rid)
	}
	s.stop(t)
	s.done <- nil // stop is deferred too

	found := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if n := strings.Count(line, `"request_id":`); n > 1 {
			t.Errorf("request_id %d times: %s", n, line)
		}
		if rec["request_id"] == rid {
			found[rec["msg"].(string)] = true
		}
	}
	for _, msg := range []string{"policy set", "request"} {
		if !found[msg] {
			t.Errorf("no %q log line with request_id %s:\n%s", msg, rid, logs)
		}
	}
}
