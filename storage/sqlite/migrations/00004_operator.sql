-- +goose Up
-- Operator extensions: Lua modules (versioned), hook bindings, settings,
-- operator users, JWT signing keys and the record of script runs.
CREATE TABLE op_modules (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    origin     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

-- The active version of each module; no row: none is active.
CREATE TABLE op_active (
    name       TEXT    PRIMARY KEY,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    FOREIGN KEY (name, version) REFERENCES op_modules (name, version)
) WITHOUT ROWID;

-- Every activation (version 0: deactivation), for rollback and audit.
CREATE TABLE op_activations (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL,
    version INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    by      TEXT    NOT NULL
);
CREATE INDEX op_activations_name ON op_activations (name, id);

CREATE TABLE op_hooks (
    id         INTEGER PRIMARY KEY,
    event      TEXT    NOT NULL,
    module     TEXT    NOT NULL,
    function   TEXT    NOT NULL,
    origin     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    UNIQUE (event, module, function)
);

-- scope '' is the operator's; otherwise a provider name. Secrets keep
-- their value sealed (XChaCha20-Poly1305) in sealed, value is ''.
CREATE TABLE op_settings (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL DEFAULT '',
    secret     INTEGER NOT NULL DEFAULT 0,
    sealed     BLOB,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE TABLE op_users (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX op_users_active_name ON op_users (name) WHERE revoked_at = 0;

-- Signing keys created by rotation (sealed), and retirements (sealed NULL).
CREATE TABLE op_keys (
    id         TEXT    PRIMARY KEY,
    sealed     BLOB,
    created_at INTEGER NOT NULL DEFAULT 0,
    retired_at INTEGER NOT NULL DEFAULT 0,
    current    INTEGER NOT NULL DEFAULT 0
);

-- One row per script or hook run; started is unix milliseconds.
CREATE TABLE op_runs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    event         TEXT    NOT NULL DEFAULT '',
    version       TEXT    NOT NULL DEFAULT '',
    order_id      TEXT    NOT NULL DEFAULT '',
    provider      TEXT    NOT NULL DEFAULT '',
    started       INTEGER NOT NULL,
    duration_us   INTEGER NOT NULL DEFAULT 0,
    ok            INTEGER NOT NULL,
    error         TEXT    NOT NULL DEFAULT '',
    error_line    INTEGER NOT NULL DEFAULT 0,
    limit_hit     TEXT    NOT NULL DEFAULT '',
    rejected      TEXT    NOT NULL DEFAULT '',
    logs          TEXT    NOT NULL DEFAULT '',
    logs_dropped  INTEGER NOT NULL DEFAULT 0,
    result        TEXT    NOT NULL DEFAULT '',
    modules       TEXT    NOT NULL DEFAULT '',
    instructions  INTEGER NOT NULL DEFAULT 0,
    http_requests INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX op_runs_order ON op_runs (order_id, id) WHERE order_id != '';
CREATE INDEX op_runs_provider ON op_runs (provider, id);
CREATE INDEX op_runs_kind ON op_runs (kind, name, id);
CREATE INDEX op_runs_started ON op_runs (started);

-- +goose Down
DROP TABLE op_runs;
DROP TABLE op_keys;
DROP TABLE op_users;
DROP TABLE op_settings;
DROP TABLE op_hooks;
DROP TABLE op_activations;
DROP TABLE op_active;
DROP TABLE op_modules;
