package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/attestd/attestd/api"
	"github.com/attestd/attestd/auth"
)

// newAuthenticator builds the bearer-token authenticator of one instance
// from its auth block; nil for a Shared instance without one.
func newAuthenticator(ctx context.Context, ri resolvedInstance, dataDir string, log *slog.Logger) (api.Authenticator, error) {
	a := ri.Auth
	var is auth.Issuer
	switch {
	case a.Dev:
		id, err := auth.OpenDevIdentity(dataDir)
		if err != nil {
			return nil, err
		}
		is = id.Issuer()
	case a.OIDCIssuer != "":
		is = auth.Issuer{Issuer: a.OIDCIssuer}
	case a.JWKSFile != "":
		if a.Issuer == "" {
			return nil, fmt.Errorf("jwks_file needs \"issuer\": the exact iss of the tokens it verifies")
		}
		is = auth.Issuer{Issuer: a.Issuer, JWKSFile: a.JWKSFile}
	default:
		return nil, nil
	}
	cfg := auth.Config{Issuers: []auth.Issuer{is}, Now: time.Now, Logger: log.With("instance", ri.Name)}
	if a.Audience != "" {
		cfg.Audiences = []string{a.Audience}
	}
	for role, values := range a.Roles {
		r, err := auth.ParseRole(role)
		if err != nil {
			return nil, err
		}
		if r == auth.RoleReader {
			cfg.ReaderRoles = values
		} else {
			cfg.ContributorRoles = values
		}
	}
	for role, as := range a.Assignments {
		r, err := auth.ParseRole(role)
		if err != nil {
			return nil, fmt.Errorf("assignments: %w", err)
		}
		cfg.Assignments = append(cfg.Assignments, auth.Assignment{Role: r, ObjectIDs: as.ObjectIDs, Groups: as.Groups, AppIDs: append(as.AppIDs, as.AZP...)})
	}
	au, err := auth.New(cfg)
	if err != nil {
		return nil, err
	}
	return au, nil
}

func authDescription(ri resolvedInstance) string {
	switch a := ri.Auth; {
	case a.Dev:
		return "development identity (attestd token)"
	case a.OIDCIssuer != "":
		return "OIDC " + a.OIDCIssuer
	case a.JWKSFile != "":
		return "JWKS file " + a.JWKSFile
	}
	return "none (Shared: public reads, no writes)"
}
