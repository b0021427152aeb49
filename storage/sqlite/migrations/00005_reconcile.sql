-- +goose Up
-- Reconciliation reports (market/reconcile): one per source, provider and
-- day (yyyyMMdd, China time for VCC); reconciling a day again replaces it.
-- report is the whole report as JSON; the other columns filter and sort.
CREATE TABLE reconcile_reports (
    source     TEXT    NOT NULL,
    provider   TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    ok         INTEGER NOT NULL,
    ran_at     INTEGER NOT NULL,
    report     TEXT    NOT NULL,
    PRIMARY KEY (source, provider, day)
) WITHOUT ROWID;
CREATE INDEX reconcile_reports_day ON reconcile_reports (day);

-- +goose Down
DROP TABLE reconcile_reports;
