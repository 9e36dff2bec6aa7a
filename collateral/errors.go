package collateral

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The error classes every collateral family (Intel DCAP, AMD KDS, …) shares,
// so a verifier or the HTTP edge can tell "the source is down, try again"
// from "there is no such collateral" from "the collateral is bad" without
// knowing which source answered:
//
//	errors.Is(err, ErrNotFound)     the source answered and has nothing for the key
//	errors.Is(err, ErrUnavailable)  transient: network, timeout, 5xx, 429; *UnavailableError says more
//	errors.Is(err, ErrMalformed)    bytes that claim to be collateral are not (ErrInvalid is the same error)
//
// A cancelled or expired caller context is none of these: it is returned as
// (a wrap of) ctx.Err().

// ErrNotFound means a source answered but has no collateral for the request
// (an unknown FMSPC, a bundle without a PCK CRL for the requested CA, a PCS
// or KDS 404). It is final for that source: retrying will not help until the
// source's content changes.
var ErrNotFound = errors.New("collateral not found")

// ErrMalformed means bytes that claim to be collateral could not be parsed
// (bad JSON, a CRL that is not DER, a signature of the wrong length), or do
// not answer the request (a VCEK for another chip). Sources never check
// signatures; they only reject what cannot be collateral at all.
var ErrMalformed = errors.New("malformed collateral")

// ErrInvalid is ErrMalformed under its family-neutral name: an invalid
// document. errors.Is(err, ErrInvalid) and errors.Is(err, ErrMalformed) are
// the same test.
var ErrInvalid = ErrMalformed

// ErrUnavailable is the class of *UnavailableError: errors.Is(err,
// ErrUnavailable) holds for every UnavailableError in err's chain.
var ErrUnavailable = errors.New("collateral unavailable")

// UnavailableError means collateral could not be obtained right now: a
// network error, a timeout, a 5xx, a 429 or an unusable answer from an
// upstream service. It is a different class from bad evidence, so callers
// (and the cache) can keep serving older collateral or report "try again"
// instead of "not trusted".
type UnavailableError struct {
	Source string // "pcs https://api.trustedservices.intel.com", "kds https://kdsintf.amd.com", …
	// Status is the upstream HTTP status when there was an answer (503,
	// 429, …); zero for transport failures and unusable 200 answers.
	Status int
	// RetryAfter is the upstream's Retry-After, when it sent one (AMD KDS
	// does on 429); zero otherwise.
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	s := "collateral unavailable from " + e.Source
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.RetryAfter > 0 {
			s += fmt.Sprintf(", retry after %s", e.RetryAfter)
		}
		s += ")"
	}
	return s + ": " + fmt.Sprint(e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true for every UnavailableError.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// RateLimited reports whether the upstream refused because of its request
// rate (HTTP 429): the request was fine and must be retried later, never
// turned into a rejection of the evidence.
func (e *UnavailableError) RateLimited() bool { return e.Status == http.StatusTooManyRequests }

// Transient reports whether err means "try again later": an
// UnavailableError in its chain. Not-found, malformed collateral and context
// errors are not transient.
func Transient(err error) bool { return errors.Is(err, ErrUnavailable) }
