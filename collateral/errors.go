package collateral

import (
	"errors"
	"fmt"
)

// ErrNotFound means a source answered but has no collateral for the request
// (an unknown FMSPC, a bundle without a PCK CRL for the requested CA, a PCS
// 404). It is final for that source: retrying will not help until the
// source's content changes.
var ErrNotFound = errors.New("collateral not found")

// ErrMalformed means bytes that claim to be collateral could not be parsed
// (bad JSON, a CRL that is not DER, a signature of the wrong length). Sources
// never check signatures; they only reject what cannot be collateral at all.
var ErrMalformed = errors.New("malformed collateral")

// UnavailableError means collateral could not be obtained right now: a
// network error, a timeout, a 5xx or an unusable answer from PCS/PCCS. It is
// a different class from bad evidence, so callers (and the cache) can keep
// serving older collateral or report "try again" instead of "not trusted".
type UnavailableError struct {
	Source string // "pcs https://api.trustedservices.intel.com", "bundle /etc/attestd/collateral", …
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("collateral unavailable from %s: %v", e.Source, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }
