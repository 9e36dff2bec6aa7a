package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSubcommandHelp: every attestd command answers --help (and -h) the
// same way: exit 0, "Usage: attestd COMMAND …", a description, its flags
// (each one it takes), and an example; groups list their commands and exit
// 0 for --help but 2 without a command.
func TestSubcommandHelp(t *testing.T) {
	for _, tc := range []struct {
		cmd   []string
		flags []string // flags that must be listed; nil: the command has none
		not   []string // flags that must not be
	}{
		{cmd: []string{"serve"}, flags: []string{"listen", "data", "config", "log-format", "metrics-listen"}},
		{cmd: []string{"token"}, flags: []string{"data", "role", "instance", "ttl", "create"}},
		{cmd: []string{"keys", "list"}, flags: []string{"data", "instance", "alg", "previous-key-encryption-key"}, not: []string{"retire-after"}},
		{cmd: []string{"keys", "rotate"}, flags: []string{"data", "instance", "retire-after"}},
		{cmd: []string{"verify"}, flags: []string{"type", "evidence", "collateral", "at", "roots", "runtime-data"}},
		{cmd: []string{"policy", "check"}},
		{cmd: []string{"policy", "explain"}, flags: []string{"type", "policy", "claims", "evidence", "server", "json"}},
		{cmd: []string{"audit", "list"}, flags: []string{"data", "config", "instance", "since", "json"}},
		{cmd: []string{"keys", "retire"}, flags: []string{"data", "instance", "at", "key-encryption-key"}},
		{cmd: []string{"keys", "import"}, flags: []string{"data", "instance", "from"}},
		{cmd: []string{"keys", "rewrap"}, flags: []string{"data", "config", "store-dsn", "key-encryption-key", "previous-key-encryption-key"}, not: []string{"instance"}},
		{cmd: []string{"store", "migrate"}, flags: []string{"from", "to"}},
		{cmd: []string{"version"}, flags: []string{"json"}},
	} {
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			args := append(append([]string{}, tc.cmd...), h)
			code := run(context.Background(), args, &out, &errb)
			all := out.String() + errb.String()
			if code != 0 {
				t.Fatalf("%v: exit %d\n%s", args, code, all)
			}
			want := []string{"Usage: attestd " + strings.Join(tc.cmd, " "), "\n\nFlags:\n", "\nExample:\n  "}
			if tc.cmd[0] == "serve" {
				want[0] = "Usage: attestd [serve]"
			}
			for _, f := range tc.flags {
				want = append(want, "\n  -"+f+" ", "\n  -"+f+"\n")
			}
			for i := 0; i < len(want); i++ {
				w := want[i]
				if strings.HasSuffix(w, " ") && strings.HasPrefix(w, "\n  -") {
					// A flag line is "-name type" or "-name" alone (bool).
					if !strings.Contains(all, w) && !strings.Contains(all, want[i+1]) {
						t.Errorf("%v: help lacks flag %s:\n%s", args, strings.TrimSpace(w), all)
					}
					i++
					continue
				}
				if !strings.Contains(all, w) {
					t.Errorf("%v: help lacks %q:\n%s", args, w, all)
				}
			}
			for _, f := range tc.not {
				if strings.Contains(all, "-"+f) {
					t.Errorf("%v: help lists -%s, which the command does not take", args, f)
				}
			}
			if strings.Contains(all, "Usage of ") {
				t.Errorf("%v: bare flag-package usage:\n%s", args, all)
			}
		}
	}
	for _, group := range []string{"keys", "audit", "policy", "store"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{group, "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String()+errb.String(), "COMMAND --help") {
			t.Errorf("%s --help: exit %d\n%s%s", group, code, out.String(), errb.String())
		}
		if code := run(context.Background(), []string{group}, &out, &errb); code != 2 {
			t.Errorf("%s without a command: exit %d, want 2", group, code)
		}
		if code := run(context.Background(), []string{group, "frobnicate"}, &out, &errb); code != 2 {
			t.Errorf("%s frobnicate: exit %d, want 2", group, code)
		}
	}
}
