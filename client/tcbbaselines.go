package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// TCBBaselinesAPIVersion is the api-version GetTCBBaselines sends when the
// client uses DefaultAPIVersion: GET /tcbbaselines/{type} exists only in
// 2022-09-01-preview and 2025-06-01 (maa-api.md §1, §1.6). A client
// configured with another APIVersion sends that one.
const TCBBaselinesAPIVersion = "2025-06-01"

// TCBBaseline is one TCB baseline a policy can select with
// x-ms-sgx-tcbidentifier (maa-api.md §1.6). The wire carries the
// evaluation data number and the release date as strings; they are parsed
// here so a relying party can compare them, and a value that does not
// parse is an error rather than a silent zero.
type TCBBaseline struct {
	// Identifier is tcbIdentifier: "azuredefault" or an evaluation data
	// number as text ("17").
	Identifier string
	// EvaluationDataNumber is tcbEvaluationDataNumber.
	EvaluationDataNumber int
	// ReleaseDate is tcbReleaseDate; zero when the service sent none.
	ReleaseDate time.Time
	// MinimumPSWLinuxVersion and MinimumPSWWindowsVersion are the minimum
	// Intel PSW versions (empty from attestd: Intel's collateral does not
	// carry them).
	MinimumPSWLinuxVersion   string
	MinimumPSWWindowsVersion string
	// Selected is isSelectedTcb: the baseline the policy in force uses.
	Selected bool
}

// GetTCBBaselines fetches GET /tcbbaselines/{type}: the TCB baselines
// attestations of type t can be evaluated against, the selected one
// marked. It needs the reader role (a Credential), as GET /policies.
func (c *Client) GetTCBBaselines(ctx context.Context, t AttestationType) ([]TCBBaseline, error) {
	version := ""
	if c.version == DefaultAPIVersion {
		version = TCBBaselinesAPIVersion
	}
	b, err := c.do(ctx, request{method: "GET", path: "/tcbbaselines/" + url.PathEscape(string(t)), version: version})
	if err != nil {
		return nil, err
	}
	return ParseTCBBaselines(b)
}

// wireTCBBaseline is an entry as MAA and attestd write it. The number is
// kept raw so that a service writing it as a JSON number rather than the
// documented string is read too.
type wireTCBBaseline struct {
	TCBIdentifier            *string         `json:"tcbIdentifier"`
	TCBEvaluationDataNumber  json.RawMessage `json:"tcbEvaluationDataNumber"`
	TCBReleaseDate           string          `json:"tcbReleaseDate"`
	MinimumPSWLinuxVersion   string          `json:"minimumPswLinuxVersion"`
	MinimumPSWWindowsVersion string          `json:"minimumPswWindowsVersion"`
	IsSelectedTCB            bool            `json:"isSelectedTcb"`
}

// ParseTCBBaselines reads the body of GET /tcbbaselines/{type},
// {"tcbBaselines":[…]}. Every entry needs a tcbIdentifier and a
// non-negative evaluation data number; at most one may be selected.
func ParseTCBBaselines(b []byte) ([]TCBBaseline, error) {
	var body struct {
		TCBBaselines *[]wireTCBBaseline `json:"tcbBaselines"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("client: TCB baselines: %w", err)
	}
	if body.TCBBaselines == nil {
		return nil, fmt.Errorf("client: TCB baselines: the response has no tcbBaselines array")
	}
	out := make([]TCBBaseline, 0, len(*body.TCBBaselines))
	selected := 0
	for i, w := range *body.TCBBaselines {
		if w.TCBIdentifier == nil || *w.TCBIdentifier == "" {
			return nil, fmt.Errorf("client: TCB baselines: entry %d has no tcbIdentifier", i)
		}
		n, err := evaluationDataNumber(w.TCBEvaluationDataNumber)
		if err != nil {
			return nil, fmt.Errorf("client: TCB baselines: entry %d (%q): tcbEvaluationDataNumber: %w", i, *w.TCBIdentifier, err)
		}
		e := TCBBaseline{Identifier: *w.TCBIdentifier, EvaluationDataNumber: n, MinimumPSWLinuxVersion: w.MinimumPSWLinuxVersion,
			MinimumPSWWindowsVersion: w.MinimumPSWWindowsVersion, Selected: w.IsSelectedTCB}
		if w.TCBReleaseDate != "" {
			if e.ReleaseDate, err = time.Parse(time.RFC3339, w.TCBReleaseDate); err != nil {
				return nil, fmt.Errorf("client: TCB baselines: entry %d (%q): tcbReleaseDate: %w", i, *w.TCBIdentifier, err)
			}
		}
		if e.Selected {
			selected++
		}
		out = append(out, e)
	}
	if selected > 1 {
		return nil, fmt.Errorf("client: TCB baselines: %d baselines are marked selected; a policy selects at most one", selected)
	}
	return out, nil
}

// evaluationDataNumber reads "17" (the wire's string) or 17.
func evaluationDataNumber(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, fmt.Errorf("missing")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("%q is not a non-negative decimal number", s)
	}
	return n, nil
}
