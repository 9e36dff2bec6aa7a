package evidence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// ErrConfig marks a plugin's refusal of its configuration block (the server
// reports it as a usage error).
var ErrConfig = errors.New("configuration error")

// Plugin is how a TEE package plugs into the server binary: its attestation
// types, the configuration blocks it reads and a constructor. cmd/attestd
// lists the plugins it is built with (one line per TEE) and builds every
// verifier through them; it knows no TEE's options.
//
// A block is a top-level member of the configuration file ("sgx" and
// "collateral" today; "tpm", "snp", "tdx" slot in beside them). Several
// plugins may read one block (Intel's "collateral" serves SGX and TDX).
type Plugin struct {
	// Name is the plugin's own block and its name in logs ("sgx").
	Name string
	// Blocks are the configuration members the plugin reads, Name included.
	Blocks []string
	// Types are the attestation types its verifier answers.
	Types []Type
	// Open builds the verifier from env. A nil Verifier (and nil error)
	// means the configuration disabled it. close releases what it holds
	// (collateral caches, connections); it is never nil when err is nil.
	Open func(ctx context.Context, env PluginEnv) (v Verifier, close func() error, err error)
}

// PluginEnv is what a plugin's Open may use.
type PluginEnv struct {
	// Block returns the raw JSON of a configuration member (nil when absent).
	Block func(name string) json.RawMessage
	// Path resolves a path given in the configuration (relative to the
	// configuration file).
	Path func(string) string
	// DataDir is the server's data directory (caches live below it).
	DataDir string
	Logger  *slog.Logger
	// Collateral, when set, is given each collateral source the plugin
	// opens (its cache's statistics), so that the server reports it in
	// /metrics and /readyz. Nil: nobody asks.
	Collateral func(CollateralReporter)
}

// CollateralReporter is a collateral source's state as the server reports
// it (collateral/cache.Stats implements it; metrics reads the rest).
type CollateralReporter interface {
	// Source names it ("pcs", "kds", …).
	Source() string
	// Ready is nil when the source's collateral is usable as its
	// configuration requires, else the reason (a readiness failure).
	Ready(now time.Time) error
}

// DecodeBlock decodes a plugin's configuration block into v, refusing
// unknown members (a misspelt option must not silently fall back to a
// default); an absent or null block leaves v as it is.
func DecodeBlock(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
