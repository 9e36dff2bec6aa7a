package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/attestd/attestd/client"
)

// tcbBaselines runs "attest tcb-baselines TYPE": GET /tcbbaselines/{type}
// (reader role). Text output is a table, the selected baseline marked;
// --output json prints MAA's own body shape, so a script written against
// MAA's answer reads this one too.
func tcbBaselines(ctx context.Context, o *options, typ string, stdout io.Writer) error {
	c, err := o.client(true)
	if err != nil {
		return err
	}
	bs, err := c.GetTCBBaselines(ctx, client.AttestationType(typ))
	if err != nil {
		return err
	}
	if o.output == "json" {
		type entry struct {
			TCBIdentifier            string `json:"tcbIdentifier"`
			TCBEvaluationDataNumber  string `json:"tcbEvaluationDataNumber"`
			TCBReleaseDate           string `json:"tcbReleaseDate"`
			MinimumPSWLinuxVersion   string `json:"minimumPswLinuxVersion"`
			MinimumPSWWindowsVersion string `json:"minimumPswWindowsVersion"`
			IsSelectedTCB            bool   `json:"isSelectedTcb"`
		}
		out := make([]entry, 0, len(bs))
		for _, b := range bs {
			out = append(out, entry{b.Identifier, fmt.Sprint(b.EvaluationDataNumber), date(b.ReleaseDate, time.RFC3339),
				b.MinimumPSWLinuxVersion, b.MinimumPSWWindowsVersion, b.Selected})
		}
		return printJSON(stdout, map[string]any{"tcbBaselines": out})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SELECTED\tIDENTIFIER\tEVALUATION DATA NUMBER\tRELEASED\tMIN PSW LINUX\tMIN PSW WINDOWS")
	for _, b := range bs {
		mark := ""
		if b.Selected {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", mark, b.Identifier, b.EvaluationDataNumber, orDash(date(b.ReleaseDate, time.DateOnly)),
			orDash(b.MinimumPSWLinuxVersion), orDash(b.MinimumPSWWindowsVersion))
	}
	return tw.Flush()
}

// date formats t, "" for the zero time (the service sent no date).
func date(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
