package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/attestd/attestd/auth"
	"github.com/attestd/attestd/instance"
	"github.com/attestd/attestd/store"
)

// AuditPath is the route of an instance's audit trail (attestd's addition,
// not an MAA operation).
const AuditPath = "/audit"

// Page sizes of GET /audit.
const (
	DefaultAuditPage = 100
	MaxAuditPage     = 1000
)

// AuditReader reads an instance's audit trail; store.Store implements it.
type AuditReader interface {
	AuditPage(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// AuditEntryJSON is one entry of GET /audit.
type AuditEntryJSON struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Hash   string    `json:"hash"`
	Detail string    `json:"detail,omitempty"`
}

// AuditPageJSON is the body of GET /audit: entries newest first, and the
// cursor of the next (older) page, 0 when this is the last.
type AuditPageJSON struct {
	Entries    []AuditEntryJSON `json:"entries"`
	NextBefore int64            `json:"nextBefore,omitempty"`
}

// audit serves GET {prefix}/audit?limit=N&before=ID&since=RFC3339 to the
// reader role. Pages are cut by id (before: entries older than that id), so
// entries written while a client pages never shift the pages it has yet to
// read.
func (h *instanceHandler) audit(w http.ResponseWriter, r *http.Request) {
	in := h.begin(r)
	if h.m.Audit == nil {
		writeError(w, r, apiError(instance.CodeNotFound, "this server does not serve the audit trail"))
		return
	}
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	if _, err := h.authorize(r, auth.RoleReader); err != nil {
		writeError(w, r, err)
		return
	}
	q := store.AuditQuery{Instance: in.Name(), Limit: DefaultAuditPage}
	v := r.URL.Query()
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditPage {
			writeError(w, r, apiError(instance.CodeInvalidParameter, "limit %q: want an integer from 1 to %d", clipText(s, 32), MaxAuditPage))
			return
		}
		q.Limit = n
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			writeError(w, r, apiError(instance.CodeInvalidParameter, "before %q: want a positive entry id (nextBefore of the previous page)", clipText(s, 32)))
			return
		}
		q.Before = n
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			writeError(w, r, apiError(instance.CodeInvalidParameter, "since %q: want an RFC 3339 time", clipText(s, 64)))
			return
		}
		q.Since = t
	}
	// One more than asked tells whether an older page exists.
	want := q.Limit
	q.Limit++
	es, err := h.m.Audit.AuditPage(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := AuditPageJSON{Entries: []AuditEntryJSON{}}
	for i, e := range es {
		if i == want {
			out.NextBefore = es[want-1].ID
			break
		}
		out.Entries = append(out.Entries, AuditEntryJSON{ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, Target: e.Target, Hash: e.Hash, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, out)
}
