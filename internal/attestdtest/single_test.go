package attestdtest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/evidence"
)

// TestInstance: StartInstance serves over TLS with its URL as the issuer;
// with DevAuth a contributor token of its identity may change policies,
// without it every admin call is refused; configured policies are in force.
func TestInstance(t *testing.T) {
	put := func(s *Instance, bearer string) int {
		t.Helper()
		req, _ := http.NewRequest("PUT", s.URL+"/policies/SgxEnclave?api-version=2020-10-01",
			strings.NewReader(UnsignedPolicy("version=1.0; authorizationrules{=> permit();}; issuancerules{};")))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := s.Server.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	withAuth := StartInstance(t, InstanceOptions{DevAuth: true, Policies: map[evidence.Type]string{evidence.SgxEnclave: "version=1.0; authorizationrules{=> deny();}; issuancerules{};"}})
	if !strings.HasPrefix(withAuth.URL, "https://127.0.0.1:") || withAuth.Dev == nil {
		t.Fatalf("URL %q, dev %v", withAuth.URL, withAuth.Dev)
	}
	res, err := withAuth.Server.Client().Get(withAuth.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), `"issuer":"`+withAuth.URL+`"`) {
		t.Fatalf("metadata %s", b)
	}
	tok0, err := withAuth.Instance.GetPolicy(t.Context(), "SgxEnclave")
	if err != nil {
		t.Fatal(err)
	}
	// The answer token's x-ms-policy is the unsigned JWS of the text.
	var outer struct {
		Policy string `json:"x-ms-policy"`
	}
	var inner struct {
		AttestationPolicy string
	}
	body, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok0, ".")[1])
	json.Unmarshal(body, &outer)
	body, _ = base64.RawURLEncoding.DecodeString(strings.Split(outer.Policy+"..", ".")[1])
	json.Unmarshal(body, &inner)
	if text, _ := base64.RawURLEncoding.DecodeString(inner.AttestationPolicy); !strings.Contains(string(text), "deny()") {
		t.Fatalf("configured policy: %q", text)
	}
	tok, err := withAuth.Dev.Mint(time.Now(), auth.RoleContributor, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st := put(withAuth, tok); st != 200 {
		t.Fatalf("policy set with a contributor token: %d", st)
	}
	if st := put(withAuth, ""); st != 401 {
		t.Fatalf("anonymous policy set: %d", st)
	}

	refusing := NewInstance(t, InstanceOptions{})
	srv := StartInstance(t, InstanceOptions{})
	if refusing.Dev != nil || refusing.Handler == nil {
		t.Fatal("NewInstance without DevAuth has a development identity")
	}
	if st := put(srv, tok); st != 401 {
		t.Fatalf("policy set on an instance refusing admin calls: %d", st)
	}
}
