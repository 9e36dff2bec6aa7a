package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// TpmAttester is the TPM side of MAA's TPM protocol (maa-api.md §1.3): given
// the service's challenge and service_context it quotes and returns the
// {"payload":{"request":"<JWS>"}} message. tpmclient.Attester implements it
// over a TPM 2.0 (v2 attReqV2 requests, or v1 attReq with Protocol 1).
type TpmAttester interface {
	TpmRequest(ctx context.Context, challenge []byte, serviceContext string) ([]byte, error)
}

// TpmResult is the outcome of AttestTpm: the report JWT as the service
// issued it and the validated token.
type TpmResult struct {
	Report string
	Token  *Token
}

// AttestTpmProtocol sends one message of the TPM protocol to POST
// /attest/Tpm in MAA's {"data": base64url(message)} envelope and returns
// the decoded reply message, as the official SDKs' attestTpm does. It
// neither reads nor checks the messages.
func (c *Client) AttestTpmProtocol(ctx context.Context, message []byte) ([]byte, error) {
	body, err := json.Marshal(map[string]string{"data": base64.RawURLEncoding.EncodeToString(message)})
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: "POST", path: "/attest/Tpm", contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	var r struct {
		Data *string `json:"data"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || r.Data == nil {
		return nil, fmt.Errorf("client: /attest/Tpm: the response has no \"data\" member")
	}
	out, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(*r.Data, "="))
	if err != nil {
		return nil, fmt.Errorf("client: /attest/Tpm: data is not base64url: %w", err)
	}
	return out, nil
}

// AttestTpm runs the whole TPM protocol: the aikcert init round, the
// attester's request for the returned challenge, and validation of the
// report token under the client's Validation options.
func (c *Client) AttestTpm(ctx context.Context, a TpmAttester) (*TpmResult, error) {
	if a == nil {
		return nil, errors.New("client: AttestTpm: no attester")
	}
	reply, err := c.AttestTpmProtocol(ctx, []byte(`{"payload":{"type":"aikcert"}}`))
	if err != nil {
		return nil, err
	}
	challenge, sc, err := parseTpmChallenge(reply)
	if err != nil {
		return nil, err
	}
	msg, err := a.TpmRequest(ctx, challenge, sc)
	if err != nil {
		return nil, fmt.Errorf("client: TPM request: %w", err)
	}
	if reply, err = c.AttestTpmProtocol(ctx, msg); err != nil {
		return nil, err
	}
	report, err := parseTpmReport(reply)
	if err != nil {
		return nil, err
	}
	t, err := c.validate(ctx, report, false)
	if err != nil {
		return nil, err
	}
	return &TpmResult{Report: report, Token: t}, nil
}

// parseTpmChallenge reads the init round's reply
// {"payload":{"challenge": b64url, "service_context": …}}.
func parseTpmChallenge(reply []byte) (challenge []byte, serviceContext string, err error) {
	var ch struct {
		Payload struct {
			Challenge      string `json:"challenge"`
			ServiceContext string `json:"service_context"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(reply, &ch); err != nil {
		return nil, "", fmt.Errorf("client: TPM init reply: %w", err)
	}
	challenge, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(ch.Payload.Challenge, "="))
	if err != nil || len(challenge) == 0 || ch.Payload.ServiceContext == "" {
		return nil, "", errors.New("client: TPM init reply: payload.challenge (base64url) and payload.service_context are required")
	}
	return challenge, ch.Payload.ServiceContext, nil
}

// parseTpmReport reads the final reply {"payload":{"report": JWT}}.
func parseTpmReport(reply []byte) (string, error) {
	var rep struct {
		Payload struct {
			Report string `json:"report"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(reply, &rep); err != nil || rep.Payload.Report == "" {
		return "", errors.New("client: TPM reply: no payload.report")
	}
	return rep.Payload.Report, nil
}
