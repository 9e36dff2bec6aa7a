package auth

import (
	"context"
	"testing"
)

// TestRoleAssignments: Entra ID access tokens for https://attest.azure.net
// carry no roles claim; configured assignments by oid, group or azp/appid
// grant the role instead. A token naming nobody assigned stays at RoleNone
// and is refused.
func TestRoleAssignments(t *testing.T) {
	a, _, _ := keys(t)
	c := &clock{t: t0}
	au := newFileAuth(t, c, func(cfg *Config) {
		cfg.Assignments = []Assignment{
			{Role: RoleContributor, ObjectIDs: []string{"11111111-aaaa-4bbb-8ccc-000000000001"}},
			{Role: RoleReader, Groups: []string{"group-readers"}},
			{Role: RoleContributor, AppIDs: []string{"app-deployer"}},
			{Role: RoleReader, ObjectIDs: []string{"oid-reader"}},
		}
	}, a)
	for _, tc := range []struct {
		name string
		kv   []any // changes to baseClaims (no roles claim)
		want Role
	}{
		{"assigned oid", []any{"oid", "11111111-aaaa-4bbb-8ccc-000000000001"}, RoleContributor},
		{"unassigned oid", []any{"oid", "11111111-aaaa-4bbb-8ccc-000000000002"}, RoleNone},
		{"no oid", []any{"oid", nil}, RoleNone},
		{"assigned group", []any{"groups", []string{"other", "group-readers"}}, RoleReader},
		{"unassigned group", []any{"groups", []string{"group-writers"}}, RoleNone},
		{"assigned azp", []any{"azp", "app-deployer"}, RoleContributor},
		{"assigned appid (v1 token)", []any{"azp", nil, "appid", "app-deployer"}, RoleContributor},
		{"oid value in sub does not count", []any{"oid", nil, "sub", "11111111-aaaa-4bbb-8ccc-000000000001"}, RoleNone},
		{"highest of claim and assignment", []any{"oid", "oid-reader", "roles", []string{"Attestation.Contributor"}}, RoleContributor},
		{"highest of two assignments", []any{"oid", "oid-reader", "azp", "app-deployer"}, RoleContributor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := au.Authenticate(context.Background(), "Bearer "+mint(t, a, "", "kid-a", with(baseClaims(t0), tc.kv...)))
			if err != nil {
				t.Fatal(err)
			}
			if p.Role != tc.want {
				t.Fatalf("role %s, want %s", p.Role, tc.want)
			}
			err = p.Authorize("inst", RoleReader)
			if (err == nil) != (tc.want >= RoleReader) {
				t.Fatalf("Authorize(reader) = %v with role %s", err, p.Role)
			}
			if err != nil && ReasonOf(err) != ReasonMissingRole {
				t.Fatalf("reason %q", ReasonOf(err))
			}
		})
	}
	if _, err := au.Authenticate(context.Background(), "Bearer "+mint(t, a, "", "kid-a", with(baseClaims(t0), "groups", 5))); ReasonOf(err) != ReasonMalformed {
		t.Fatalf("groups claim of the wrong type: %v", err)
	}
}

func TestAssignmentConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		as   Assignment
	}{
		{"no role", Assignment{ObjectIDs: []string{"x"}}},
		{"nobody", Assignment{Role: RoleReader}},
		{"empty id", Assignment{Role: RoleReader, Groups: []string{" "}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Issuers: []Issuer{{Issuer: testIssuer, JWKSFile: "x.json"}}, Now: (&clock{t: t0}).Now, Assignments: []Assignment{tc.as}})
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
