package policy

import "strings"

// TokenClaims serialises issued claims into token members (spec §9): the
// member name is the claim type; several claims of one type become a JSON
// array of their values in issue order, exact duplicates collapsed; a single
// remaining value is a scalar. Values keep their JSON types (bool, int64,
// string). The caller places the map at the token's top level and, for
// SgxEnclave/OpenEnclave/SevSnpVm/TdxVm, also under "x-ms-policy" (only
// when the map is non-empty); service claims win name collisions at top level.
func TokenClaims(issued []Claim) map[string]any {
	out := make(map[string]any, len(issued))
	for _, c := range issued {
		prev, ok := out[c.Type]
		if !ok {
			out[c.Type] = c.Value
			continue
		}
		switch p := prev.(type) {
		case []any:
			if !containsValue(p, c.Value) {
				out[c.Type] = append(p, c.Value)
			}
		default:
			if !sameValue(p, c.Value) {
				out[c.Type] = []any{p, c.Value}
			}
		}
	}
	return out
}

// AddToToken places issued claims into a token's claim set as spec §9
// describes: every member at the top level unless the token already has
// that name (service claims win) or the name belongs to the service (see
// serviceOwned), and — except for Tpm, whose report has no x-ms-policy —
// the same members under "x-ms-policy" (policy values kept), only when at
// least one claim was issued. The token must already hold the service's
// claims.
func AddToToken(token map[string]any, attestationType string, issued []Claim) {
	if len(issued) == 0 {
		return
	}
	members := TokenClaims(issued)
	for k, v := range members {
		if _, taken := token[k]; !taken && !serviceOwned(k) {
			token[k] = v
		}
	}
	if !strings.EqualFold(attestationType, "Tpm") {
		token["x-ms-policy"] = members
	}
}

// serviceOwned reports whether a top-level token claim name belongs to the
// service (maa-api.md §1.2): a policy-issued claim of that name stays inside
// x-ms-policy only, even when the service sets no value of its own for this
// token — otherwise a policy could forge, say, x-ms-policy-signer, nonce or
// x-ms-runtime at top level (maa-policy.md §9: the service value wins).
func serviceOwned(name string) bool {
	switch name {
	case "iss", "iat", "nbf", "exp", "jti", "nonce", "cnf",
		"x-ms-ver", "x-ms-policy", "x-ms-policy-hash", "x-ms-policy-signer",
		"x-ms-attestation-type", "x-ms-runtime", "x-ms-inittime",
		"maa-attestationcollateral":
		return true
	}
	for _, prefix := range []string{"x-ms-sgx-", "x-ms-sevsnpvm-", "x-ms-tpm-", "tdx_"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
