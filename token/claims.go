package token

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Token lifetimes of real MAA (spec §0.6).
const (
	// AttestationLifetime is exp-iat of attestation tokens.
	AttestationLifetime = 8 * time.Hour
	// ResultLifetime is exp-iat of policy and certificate-management result tokens.
	ResultLifetime = time.Hour
)

// NewJTI returns a fresh jti claim: 64 lowercase hex characters of 32
// random bytes, as real MAA emits.
func NewJTI() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on an unusable source)
	return hex.EncodeToString(b[:])
}

// Times are the iat, nbf and exp claims of one token, in integer seconds.
type Times struct {
	IssuedAt  int64 // iat
	NotBefore int64 // nbf
	Expiry    int64 // exp
}

// NewTimes computes the times of a token issued at now and valid for
// lifetime: iat = nbf = floor(now) (the JS client rejects nbf > now with no
// slack, so nbf must never be rounded up), exp = iat + lifetime in seconds.
func NewTimes(now time.Time, lifetime time.Duration) Times {
	iat := now.Unix() // floor: Go keeps the sub-second part in [0, 1e9)
	return Times{IssuedAt: iat, NotBefore: iat, Expiry: iat + int64(lifetime/time.Second)}
}

// Set stores the times in claims under "iat", "nbf" and "exp".
func (t Times) Set(claims map[string]any) {
	claims["iat"] = t.IssuedAt
	claims["nbf"] = t.NotBefore
	claims["exp"] = t.Expiry
}

// Claims returns a new claim map holding iss and the times: the members
// every MAA token carries.
func (t Times) Claims(iss string) map[string]any {
	c := map[string]any{"iss": iss}
	t.Set(c)
	return c
}
