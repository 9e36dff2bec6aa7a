package policy

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
