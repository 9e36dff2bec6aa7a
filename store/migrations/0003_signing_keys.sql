-- 0003: token-signing keys shared by every replica of an instance.
--
-- One row per key. private holds the private key in a form only the
-- replicas can use: an AES-256-GCM envelope under the key-encryption key
-- (--key-encryption-key, never stored here), or a reference to a key that
-- stays inside a PKCS#11 token. The database alone never yields a usable
-- private key.
--
-- A key is published in /certs from created_at, signs from activate_at
-- (the newest key whose activate_at has passed signs; a staged rotation
-- writes a key whose activate_at lies ahead, so every replica publishes it
-- before any signs with it) and leaves /certs at retire_at (0: not
-- scheduled). Every change bumps the instance's row in "instances" first,
-- as every other write does, so changes of one instance are serialised
-- across replicas.

CREATE TABLE signing_keys (
    instance    TEXT   NOT NULL,
    kid         TEXT   NOT NULL,
    certificate BYTEA  NOT NULL,
    private     BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    activate_at BIGINT NOT NULL,
    retire_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (instance, kid)
);

CREATE INDEX signing_keys_by_activation ON signing_keys (instance, activate_at);
