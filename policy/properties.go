package policy

import (
	"fmt"
	"strconv"
	"strings"
)

type propSpec struct {
	kind   string // "String", "Boolean", "Integer"
	engine bool   // engine property: only effective from configurationrules
	min    int64
	max    int64
}

// properties are the names of spec §7; others are ignored (spec §13-17).
var properties = map[string]propSpec{
	"x-ms-sgx-tcbidentifier":     {kind: "String", engine: true},
	"require_valid_aik_cert":     {kind: "Boolean", engine: true},
	"required_pcr_mask":          {kind: "Integer", engine: true, min: 0, max: 0xFFFFFF},
	"report_validity_in_minutes": {kind: "Integer", min: 1, max: 525600},
	"omit_x5c":                   {kind: "Boolean"},
}

// typeDefaults returns a fresh map with the defaults of spec §7 for an
// attestation type (case-insensitive), then extra (the evidence verifier's
// defaults for its own properties, e.g. SGX's x-ms-sgx-tcbidentifier
// "azuredefault": the policy package knows no TEE's defaults).
func typeDefaults(attestationType string, extra map[string]any) map[string]any {
	m := builtinDefaults(attestationType)
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func builtinDefaults(attestationType string) map[string]any {
	switch strings.ToLower(attestationType) {
	case "tpm":
		return map[string]any{
			"require_valid_aik_cert":     true,
			"required_pcr_mask":          int64(0xFFFFFF),
			"report_validity_in_minutes": int64(1440),
			"omit_x5c":                   false,
		}
	}
	return map[string]any{}
}

// setProperty applies one issueproperty claim; last value wins. It returns
// a note for the trace when the claim has no effect.
func setProperty(props map[string]any, name string, v any, sec sectionKind) (string, error) {
	spec, ok := properties[name]
	if !ok {
		return "unknown property " + strconv.Quote(short(name)) + " ignored", nil
	}
	if got := valueTypeName(v); got != spec.kind {
		return "", fmt.Errorf("property %s must be %s, got %s", name, article(spec.kind), got)
	}
	if i, ok := v.(int64); ok && (i < spec.min || i > spec.max) {
		return "", fmt.Errorf("property %s = %d is outside %d…%d", name, i, spec.min, spec.max)
	}
	if spec.engine && sec != secConfiguration {
		return "engine property " + name + " only takes effect in configurationrules", nil
	}
	props[name] = v
	return "", nil
}

func article(kind string) string {
	if kind == "Integer" {
		return "an Integer"
	}
	return "a " + kind
}
