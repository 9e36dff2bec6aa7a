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
// that name (service claims win), and — except for Tpm, whose report has
// no x-ms-policy — the same members under "x-ms-policy" (policy values
// kept), only when at least one claim was issued.
func AddToToken(token map[string]any, attestationType string, issued []Claim) {
	if len(issued) == 0 {
		return
	}
	members := TokenClaims(issued)
	for k, v := range members {
		if _, taken := token[k]; !taken {
			token[k] = v
		}
	}
	if !strings.EqualFold(attestationType, "Tpm") {
		token["x-ms-policy"] = members
	}
}
