package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// TestWriteTokenMatchesJSON: the direct path writes exactly what
// encoding/json writes, and text JSON would escape takes the general path.
func TestWriteTokenMatchesJSON(t *testing.T) {
	for _, tok := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.c2ln-_",
		"",
		"a\"b",
		"<script>",
		"caf\u00e9",
		"line\nbreak",
	} {
		rec := httptest.NewRecorder()
		writeToken(rec, tok)
		want, err := json.Marshal(map[string]string{"token": tok})
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != string(want) {
			t.Errorf("token %q: body %s, want %s", tok, got, want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("token %q: content type %q", tok, ct)
		}
		if rec.Code != 200 {
			t.Errorf("token %q: status %d", tok, rec.Code)
		}
	}
}

func FuzzWriteToken(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.c2ln")
	f.Add("\u2028")
	f.Fuzz(func(t *testing.T, tok string) {
		rec := httptest.NewRecorder()
		writeToken(rec, tok)
		want, _ := json.Marshal(map[string]string{"token": tok})
		if rec.Body.String() != string(want) {
			t.Fatalf("token %q: body %s, want %s", tok, rec.Body.String(), want)
		}
	})
}
