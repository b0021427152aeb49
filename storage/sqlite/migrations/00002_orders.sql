-- +goose Up
CREATE TABLE orders (
    seq                  INTEGER PRIMARY KEY,
    id                   TEXT    NOT NULL UNIQUE,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    duration             INTEGER NOT NULL,
    service_expired_date INTEGER NOT NULL DEFAULT 0,
    amount               INTEGER NOT NULL,
    amount_paid          INTEGER NOT NULL DEFAULT 0,
    amount_refunded      INTEGER NOT NULL DEFAULT 0,
    service_id           TEXT    NOT NULL REFERENCES service_types (id),
    service              TEXT    NOT NULL,
    service_category_id  TEXT    NOT NULL,
    provider             TEXT    NOT NULL,
    address              TEXT    NOT NULL,
    recipient            TEXT    NOT NULL,
    service_options      TEXT    NOT NULL DEFAULT '{}',
    status               TEXT    NOT NULL,
    last_payment_ts      INTEGER NOT NULL DEFAULT 0,
    paid_ts              INTEGER NOT NULL DEFAULT 0,
    filed_ts             INTEGER NOT NULL DEFAULT 0,
    complete_ts          INTEGER NOT NULL DEFAULT 0,
    refund_ts            INTEGER NOT NULL DEFAULT 0,
    public_key           TEXT    NOT NULL DEFAULT '',
    service_activated    INTEGER NOT NULL DEFAULT 0,
    service_activate_ts  INTEGER NOT NULL DEFAULT 0,
    end_at               INTEGER NOT NULL DEFAULT 0,
    service_status       TEXT    NOT NULL,
    service_running_ts   INTEGER NOT NULL DEFAULT 0,
    service_abort_ts     INTEGER NOT NULL DEFAULT 0,
    service_done_ts      INTEGER NOT NULL DEFAULT 0,
    magic                TEXT    NOT NULL DEFAULT '',
    user_service         TEXT    NOT NULL DEFAULT '{}',
    start_hash           TEXT    NOT NULL DEFAULT '',
    stop_hash            TEXT    NOT NULL DEFAULT '',
    refund_hash          TEXT    NOT NULL DEFAULT '',
    last_error           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX orders_address ON orders (address, seq);
CREATE INDEX orders_recipient ON orders (recipient, seq);
CREATE INDEX orders_service ON orders (service_id);
CREATE INDEX orders_status ON orders (status);

-- The payments ledger: every credit and refund of an order. An order's
-- amount_paid is the sum of its credits, amount_refunded of its refunds.
CREATE TABLE payments (
    id         INTEGER PRIMARY KEY,
    order_id   TEXT    NOT NULL REFERENCES orders (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('credit', 'refund')),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    source     TEXT    NOT NULL,
    reference  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (source, reference)
);
CREATE INDEX payments_order ON payments (order_id);

-- Durable lifecycle jobs. A job is queued until done, failed or cancelled;
-- a worker holds a queued job while lease_until is in the future.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    order_id     TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed', 'cancelled')),
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_due ON jobs (state, run_at) WHERE state = 'queued';
CREATE INDEX jobs_order ON jobs (order_id, state);

-- +goose Down
DROP TABLE jobs;
DROP TABLE payments;
DROP TABLE orders;
