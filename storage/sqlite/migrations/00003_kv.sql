-- +goose Up
-- Small per-provider key-value store for scripts (the kv host module).
CREATE TABLE kv (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE kv;
