-- +goose Up
CREATE TABLE providers (
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    wallet_address TEXT    NOT NULL,
    sign_address   TEXT    NOT NULL DEFAULT '',
    api_host       TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX providers_wallet ON providers (wallet_address);
CREATE INDEX providers_sign ON providers (sign_address);

CREATE TABLE categories (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    provider_id     TEXT    NOT NULL REFERENCES providers (id),
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    service_options TEXT    NOT NULL DEFAULT '{}',
    api_host        TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (provider_id, name)
);
CREATE INDEX categories_name ON categories (name);

CREATE TABLE scripts (
    hash       TEXT    PRIMARY KEY,
    source     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE service_types (
    seq               INTEGER PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    category_id       TEXT    NOT NULL REFERENCES categories (id),
    provider_id       TEXT    NOT NULL REFERENCES providers (id),
    name              TEXT    NOT NULL,
    refundable        INTEGER NOT NULL,
    base_price        INTEGER NOT NULL,
    duration_to_price TEXT    NOT NULL,
    service_options   TEXT    NOT NULL DEFAULT '{}',
    normal_api        TEXT    NOT NULL DEFAULT '{}',
    secret_api        TEXT    NOT NULL DEFAULT '{}',
    start_script      TEXT    NOT NULL DEFAULT '',
    start_hash        TEXT    REFERENCES scripts (hash),
    stop_script       TEXT    NOT NULL DEFAULT '',
    stop_hash         TEXT    REFERENCES scripts (hash),
    refund_script     TEXT    NOT NULL DEFAULT '',
    refund_hash       TEXT    REFERENCES scripts (hash),
    description       TEXT    NOT NULL DEFAULT '',
    api_host          TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (category_id, name)
);
CREATE INDEX service_types_provider ON service_types (provider_id);
CREATE INDEX service_types_name ON service_types (name);
CREATE INDEX service_types_price ON service_types (base_price);

CREATE TABLE bundled_templates (
    name       TEXT    PRIMARY KEY,
    hash       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE bundled_templates;
DROP TABLE service_types;
DROP TABLE scripts;
DROP TABLE categories;
DROP TABLE providers;
