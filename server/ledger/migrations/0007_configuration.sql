-- Configuration at run time: a draft per program, its immutable versions, the applied version,
-- and the audit journal (docs/admin.md).
--
-- program_versions was created by the state room at start-up (CREATE TABLE IF NOT EXISTS) before
-- this migration existed: a database made then already holds it, with its rows, and keeps them.
-- A fresh database gets it here, with the same definition.
CREATE TABLE IF NOT EXISTS program_versions (
    program     text        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    program_pb  bytea       NOT NULL,
    applied_at  timestamptz NOT NULL,
    PRIMARY KEY (program, version)
);

-- One row per program: its draft (the Program's deterministic protobuf bytes, and a revision
-- that every change of the draft increments), the profile database it was created for (never
-- changed), and the applied version (NULL: never applied).
CREATE TABLE programs (
    id               text        PRIMARY KEY,
    database         text        NOT NULL DEFAULT '',
    draft_pb         bytea       NOT NULL,
    draft_revision   bigint      NOT NULL DEFAULT 1 CHECK (draft_revision > 0),
    applied_version  bigint,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    FOREIGN KEY (id, applied_version) REFERENCES program_versions (program, version)
);

-- Programs applied before drafts existed: the last applied version is both the draft and the
-- applied version. Their database is read from that version by the state room at start-up
-- (this file cannot decode protobuf).
INSERT INTO programs (id, draft_pb, applied_version, created_at, updated_at)
SELECT DISTINCT ON (program) program, program_pb, version, applied_at, applied_at
FROM program_versions
ORDER BY program, version DESC;

-- Only one active (applied) program per profile database; '' binds to none.
CREATE UNIQUE INDEX programs_one_active_per_database ON programs (database)
    WHERE database <> '' AND applied_version IS NOT NULL;

-- Every configuration edit, apply, revert, import and manual transaction.
CREATE TABLE audit_entries (
    id           bigserial   PRIMARY KEY,
    program      text        NOT NULL,
    created_at   timestamptz NOT NULL,
    actor        text        NOT NULL,
    action       text        NOT NULL,
    object_kind  text        NOT NULL,
    object_id    text        NOT NULL,
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_entries_by_program ON audit_entries (program, id);
