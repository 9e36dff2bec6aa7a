package pemfile

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParseChain(t *testing.T) {
	a, b := certPEM(t, "a"), certPEM(t, "b")
	glued := bytes.Replace(append(bytes.TrimRight(a, "\n"), b...), []byte("-----\n-----BEGIN"), []byte("----------BEGIN"), 1)
	cases := []struct {
		name string
		in   []byte
		n    int    // certificates on success
		want string // error substring on failure
	}{
		{name: "two", in: append(append([]byte{}, a...), b...), n: 2},
		{name: "NUL-terminated (quote)", in: append(append([]byte{}, a...), 0), n: 1},
		{name: "END glued to BEGIN (PCS header)", in: glued, n: 2},
		{name: "CRLF and blank lines between", in: append(append(bytes.ReplaceAll(a, []byte("\n"), []byte("\r\n")), "\r\n\r\n"...), b...), n: 2},
		{name: "empty", in: nil, want: "has no PEM certificate"},
		{name: "only NULs", in: []byte{0, 0}, want: "has no PEM certificate"},
		{name: "text before", in: append([]byte("subject=CN = a\n"), a...), want: "not PEM after certificate 0"},
		{name: "text between", in: append(append(append([]byte{}, a...), "junk\n"...), b...), want: "after certificate 1"},
		{name: "text after", in: append(append([]byte{}, a...), "junk"...), want: "after certificate 1"},
		{name: "other block type", in: []byte("-----BEGIN PRIVATE KEY-----\nAQ==\n-----END PRIVATE KEY-----\n"), want: "no END line"},
		{name: "CRL block", in: []byte("-----BEGIN X509 CRL-----\nAQ==\n-----END CERTIFICATE-----\n"), want: "not a well-formed PEM block"},
		{name: "headers", in: []byte("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAQ==\n-----END CERTIFICATE-----\n"), want: "PEM headers"},
		{name: "bad DER", in: []byte("-----BEGIN CERTIFICATE-----\nAQ==\n-----END CERTIFICATE-----\n"), want: "certificate 0"},
		{name: "truncated", in: a[:len(a)/2], want: "no END line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			certs, err := ParseChain(c.in)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want an error containing %q", err, c.want)
				}
				return
			}
			if err != nil || len(certs) != c.n {
				t.Fatalf("got %d certificates, %v; want %d", len(certs), err, c.n)
			}
		})
	}
}

func FuzzParseChain(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE----------BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := ParseChain(b)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
		if err == nil {
			// Whatever is accepted re-encodes to a chain that parses the same.
			var again []byte
			for _, c := range certs {
				again = append(again, pemOf(c.Raw)...)
			}
			got, err := ParseChain(again)
			if err != nil || len(got) != len(certs) {
				t.Fatalf("re-encoded chain: %d certificates, %v", len(got), err)
			}
		}
	})
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
