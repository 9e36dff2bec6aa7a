package api

import (
	"strconv"
	"unicode/utf8"
)

// Bounds on request-derived text in responses and log lines. Error
// messages may quote what a caller sent (a path, a dataType, a policy
// literal); without a bound, a 4 MiB body could come back as a 4 MiB
// error and be written to the log as a line of that size. The policy
// package clips its own quotes much shorter; these are the last line of
// defence for every message whatever produced it.
const (
	maxErrorMessage = 8 << 10 // error.message of a response, in bytes
	maxLoggedError  = 8 << 10 // the "error" attribute of a request log line
	maxLoggedPath   = 1 << 10 // the "path" attribute
	maxLoggedMethod = 32      // the "method" attribute (any token is a valid method)
)

// clipText shortens s to at most n bytes plus a "…(N bytes)" marker, never
// splitting a UTF-8 sequence.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
