-- API keys: a caller sends `authorization: Bearer <key>`; only the key's SHA-256 is kept.
-- A key is high-entropy random text, so a plain digest cannot be reversed by guessing.
CREATE TABLE api_keys (
    key_hash   bytea       PRIMARY KEY CHECK (octet_length(key_hash) = 32),
    name       text        NOT NULL CHECK (name <> ''),
    role       text        NOT NULL CHECK (role IN ('pos', 'app', 'admin')),
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- A name identifies a live key (it is the audit journal's actor); a revoked name may be reused.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
