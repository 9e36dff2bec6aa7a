package evidence

import (
	"context"
	"time"
)

// Optional capabilities of a Verifier. The pipeline finds each by type
// assertion on the registered verifier; a wrapper that hides them hides the
// feature (GET /tcbbaselines answered 501 once because a decorator did), so
// behaviour that varies by configuration belongs in the verifier's options.

// ConfigurationDefaulter supplies the defaults of the configuration
// properties of its types (maa-policy.md §7, e.g. x-ms-sgx-tcbidentifier
// "azuredefault"); the policy package knows no TEE and applies them to
// whatever the configuration rules leave unset.
type ConfigurationDefaulter interface {
	ConfigurationDefaults(t Type) map[string]any
}

// ClaimsAdvertiser lists the claim types of its TEE for the OpenID
// metadata's claims_supported.
type ClaimsAdvertiser interface {
	ClaimsSupported() []string
}

// Baseline is one TCB baseline a policy can select (GET /tcbbaselines).
type Baseline struct {
	// Identifier is the value a policy sets to select it (for SGX
	// x-ms-sgx-tcbidentifier: "azuredefault" or the number).
	Identifier string
	// EvaluationDataNumber is the baseline's TCB evaluation data number.
	EvaluationDataNumber int
	// ReleaseDate is when it was released; zero when unknown.
	ReleaseDate time.Time
	// Selected marks the baseline the given properties select.
	Selected bool
}

// BaselineLister lists the TCB baselines of a type, marking the one that
// the configuration properties (of the policy in force) select. The
// verifier is the only place that parses its baseline property.
type BaselineLister interface {
	ListBaselines(ctx context.Context, t Type, properties map[string]any) ([]Baseline, error)
}

// MultiRound is implemented by verifiers whose protocol needs more than one
// request per attestation (MAA's TPM protocol, maa-api.md §1.3: an
// "aikcert" round returns a challenge and a service_context, the next
// request proves possession of the challenge).
//
// The pipeline calls Round before Parse. A Round with Reply set is a
// challenge round: the pipeline seals State (AEAD, key in the store, bound
// to the instance, expiring, single use) into an opaque service context,
// calls Reply with it and answers the client with the result; no policy
// runs and no token is issued. A Round with Resume set carries the service
// context of an earlier round: the pipeline opens it (refusing forged,
// expired, replayed or other-instance contexts with a CheckServiceContext*
// error) and hands the state to Parse in Request.State. A nil Round or a
// zero one is a single-shot request.
type MultiRound interface {
	Round(ctx context.Context, req *Request) (*Round, error)
	// Wrap renders the issued token as the protocol's final reply body
	// (Tpm: {"payload":{"report":token}}).
	Wrap(token string) ([]byte, error)
}

// Round is a verifier's reading of one request of a multi-round protocol.
type Round struct {
	// State is what the next round needs (e.g. the challenge); the client
	// only ever sees it sealed.
	State []byte
	// Reply builds the answer of a challenge round around the sealed state.
	Reply func(serviceContext string) ([]byte, error)
	// Resume is the sealed service context a continuing request carries.
	Resume string
}

// TokenSealer is implemented by a Parsed whose protocol returns the token
// encrypted to a key the evidence proved the attester holds (AzureGuest:
// the JWT AES-GCM encrypted, the AES key wrapped to the vTPM key the AK
// certified, maa-api.md §8). The pipeline calls SealToken with the signed
// token and answers {"token": sealed} instead of the bare token. It is a
// capability of the parsed evidence, not of the verifier, because the key
// is the request's own.
type TokenSealer interface {
	SealToken(ctx context.Context, token string) (string, error)
}
