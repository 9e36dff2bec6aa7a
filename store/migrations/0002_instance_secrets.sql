-- 0002: per-instance secrets and used single-use nonces.
--
-- instance_secrets holds key material every replica must share (today the
-- AEAD key that seals the service_context of multi-round attestation
-- protocols). A secret is created once, by whichever replica needs it
-- first (INSERT ... ON CONFLICT DO NOTHING, then read back), and never
-- changes afterwards.
--
-- used_nonces records single-use tokens (a sealed service_context's id)
-- until they expire, so a replayed one is refused by every replica. Rows
-- past expires_at are pruned on the next use.

CREATE TABLE instance_secrets (
    instance   TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    value      BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (instance, name)
);

CREATE TABLE used_nonces (
    instance   TEXT   NOT NULL,
    nonce      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (instance, nonce)
);

CREATE INDEX used_nonces_expiry ON used_nonces (instance, expires_at);
