-- 0001: initial schema.
--
-- Portable SQL: every statement here is accepted by SQLite (>= 3.35) and
-- PostgreSQL (>= 12). Rules kept on purpose:
--   * text columns are TEXT, integers BIGINT, binary columns BYTEA. SQLite has
--     no BYTEA type but accepts the name; it gets NUMERIC affinity, under which
--     SQLite stores BLOB values unchanged (https://sqlite.org/datatype3.html
--     §3.1, "no attempt is made to convert BLOB"), so DER bytes round-trip.
--   * times are BIGINT Unix nanoseconds (UTC): no TIMESTAMP type whose
--     precision or time-zone handling differs between the two engines.
--   * no AUTOINCREMENT/SERIAL: ids come from per-instance counters in
--     "instances", bumped with INSERT ... ON CONFLICT ... DO UPDATE ...
--     RETURNING at the start of every write transaction. In PostgreSQL that
--     upsert takes the instance row's lock, which serialises all writes of one
--     instance (needed for the last-certificate rule under READ COMMITTED); in
--     SQLite writes are serialised by BEGIN IMMEDIATE anyway.

CREATE TABLE instances (
    name       TEXT   NOT NULL PRIMARY KEY,
    audit_seq  BIGINT NOT NULL DEFAULT 0,
    cert_seq   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE policies (
    instance   TEXT   NOT NULL,
    att_type   TEXT   NOT NULL,
    jws        TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    signer     BYTEA,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance, att_type)
);

CREATE TABLE certificates (
    instance   TEXT   NOT NULL,
    thumbprint TEXT   NOT NULL,
    der        BYTEA  NOT NULL,
    added_at   BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (instance, thumbprint)
);

CREATE INDEX certificates_by_seq ON certificates (instance, seq);

CREATE TABLE audit (
    instance   TEXT   NOT NULL,
    id         BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    target     TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    detail     TEXT   NOT NULL,
    PRIMARY KEY (instance, id)
);
