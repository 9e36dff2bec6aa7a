package policy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Trace explains an evaluation rule by rule. It marshals to JSON as is;
// String renders it for people.
type Trace struct {
	AttestationType string         `json:"attestationType"`
	PolicyVersion   string         `json:"policyVersion"`
	PolicyHash      string         `json:"policyHash"`
	Decision        Decision       `json:"decision"`
	Error           string         `json:"error,omitempty"`
	Sections        []SectionTrace `json:"sections"`
	Issued          []Claim        `json:"issued,omitempty"`
	Properties      map[string]any `json:"properties,omitempty"`
}

// SectionTrace is one section's rules in evaluation order.
type SectionTrace struct {
	Name  string      `json:"name"`
	Line  int         `json:"line"`
	Rules []RuleTrace `json:"rules"`
}

// RuleTrace is one rule: whether it matched, why not, and what it did.
type RuleTrace struct {
	Section    string      `json:"section"`
	Index      int         `json:"index"`
	Line       int         `json:"line"`
	Column     int         `json:"column"`
	Text       string      `json:"text"`
	Matched    bool        `json:"matched"`
	Reason     string      `json:"reason,omitempty"` // why it did not match
	Conditions []CondTrace `json:"conditions,omitempty"`
	Action     string      `json:"action"`
	Effect     string      `json:"effect,omitempty"`
	Added      []Claim     `json:"added,omitempty"`      // appended to the incoming set only
	Issued     []Claim     `json:"issued,omitempty"`     // appended to the token's claims
	Properties []Claim     `json:"properties,omitempty"` // issueproperty claims
	Error      string      `json:"error,omitempty"`
}

// CondTrace is one condition of a rule.
type CondTrace struct {
	Text      string `json:"text"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	Tag       string `json:"tag,omitempty"`
	Negated   bool   `json:"negated,omitempty"`
	Selected  int    `json:"selected"` // claims satisfying the property tests
	Satisfied bool   `json:"satisfied"`
	Detail    string `json:"detail,omitempty"`
}

// JSON returns the trace as indented JSON.
func (t *Trace) JSON() ([]byte, error) { return json.MarshalIndent(t, "", "  ") }

func claimList(cs []Claim) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Type + " = " + fmtValue(c.Value)
	}
	return strings.Join(parts, ", ")
}

// String renders the trace as text, one line per rule plus details, e.g.
//
//	decision: permit
//	authorizationrules (line 1)
//	  [1] line 1:58 MATCHED  => permit();  → permit recorded
func (t *Trace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "decision: %s (attestation type %s, policy version %s, hash %s)\n", t.Decision, t.AttestationType, t.PolicyVersion, t.PolicyHash)
	if t.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", t.Error)
	}
	for _, s := range t.Sections {
		fmt.Fprintf(&b, "%s (line %d)\n", s.Name, s.Line)
		for _, r := range s.Rules {
			status := "no match"
			if r.Matched {
				status = "MATCHED "
			}
			if r.Error != "" {
				status = "ERROR   "
			}
			fmt.Fprintf(&b, "  [%d] line %d:%d %s  %s\n", r.Index+1, r.Line, r.Column, status, compact(r.Text))
			if r.Reason != "" {
				fmt.Fprintf(&b, "        why not: %s\n", r.Reason)
			}
			if r.Error != "" {
				fmt.Fprintf(&b, "        error: %s\n", r.Error)
			}
			if r.Effect != "" {
				fmt.Fprintf(&b, "        → %s\n", r.Effect)
			}
			if len(r.Issued) > 0 {
				fmt.Fprintf(&b, "        → issued: %s\n", claimList(r.Issued))
			}
			if len(r.Added) > 0 {
				fmt.Fprintf(&b, "        → added: %s\n", claimList(r.Added))
			}
			if len(r.Properties) > 0 {
				fmt.Fprintf(&b, "        → property: %s\n", claimList(r.Properties))
			}
		}
	}
	if len(t.Issued) > 0 {
		fmt.Fprintf(&b, "issued claims: %s\n", claimList(t.Issued))
	}
	return b.String()
}
