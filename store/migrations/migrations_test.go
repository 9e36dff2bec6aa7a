package migrations

import (
	"regexp"
	"strings"
	"testing"
)

func TestAllSortedAndDense(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.Version != int64(i+1) {
			t.Errorf("migration %d is %s (version %d); versions must be 1, 2, 3, …", i, m.Name, m.Version)
		}
	}
	if Latest() != ms[len(ms)-1].Version {
		t.Errorf("Latest = %d", Latest())
	}
}

// TestPortableSQL rejects constructs that only one of SQLite and PostgreSQL
// accepts. (The statements were also run against PostgreSQL 15; see the
// header of 0001_init.sql.)
func TestPortableSQL(t *testing.T) {
	ms, err := All()
	if err != nil {
		t.Fatal(err)
	}
	banned := []struct{ re, why string }{
		{`(?i)\bAUTOINCREMENT\b`, "SQLite only"},
		{`(?i)\bSERIAL\b|\bBIGSERIAL\b|\bGENERATED\s+ALWAYS\b`, "PostgreSQL only"},
		{`(?i)\bBLOB\b`, "PostgreSQL has no BLOB; use BYTEA"},
		{`(?i)\bDATETIME\b|\bTIMESTAMP\b`, "time types differ; store BIGINT Unix nanoseconds"},
		{`(?i)\bINSERT\s+OR\s+(REPLACE|IGNORE)\b|\bREPLACE\s+INTO\b`, "SQLite only; use ON CONFLICT"},
		{`(?i)\bWITHOUT\s+ROWID\b|\bPRAGMA\b`, "SQLite only"},
		{`(?i)\bINTEGER\s+PRIMARY\s+KEY\b`, "rowid alias in SQLite, plain int4 in PostgreSQL"},
		{"`", "backquoted identifiers are MySQL/SQLite only"},
	}
	for _, m := range ms {
		var code []string
		for _, line := range strings.Split(m.SQL, "\n") {
			if i := strings.Index(line, "--"); i >= 0 {
				line = line[:i]
			}
			code = append(code, line)
		}
		src := strings.Join(code, "\n")
		for _, b := range banned {
			if loc := regexp.MustCompile(b.re).FindStringIndex(src); loc != nil {
				t.Errorf("%s: %q is not portable (%s)", m.Name, src[loc[0]:loc[1]], b.why)
			}
		}
	}
}
