package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/reconcile"
)

// ReconcileStore is reconcile.Store on the database: one report per
// source, provider and day.
type ReconcileStore struct{ db *DB }

// Reconcile returns the database's reconciliation report store.
func (db *DB) Reconcile() *ReconcileStore { return &ReconcileStore{db: db} }

var _ reconcile.Store = (*ReconcileStore)(nil)

// PutReport implements reconcile.Store: it replaces the day's report.
func (s *ReconcileStore) PutReport(ctx context.Context, r *reconcile.Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = s.db.writer.ExecContext(ctx, `INSERT INTO reconcile_reports (source, provider, day, ok, ran_at, report)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (source, provider, day) DO UPDATE SET ok = excluded.ok, ran_at = excluded.ran_at, report = excluded.report`,
		r.Source, r.Provider, r.Day, r.OK, r.RanAt.UnixMilli(), string(b))
	return storageErr(err, "store reconciliation report")
}

// Report implements reconcile.Store.
func (s *ReconcileStore) Report(ctx context.Context, source, provider, day string) (*reconcile.Report, error) {
	var raw string
	err := s.db.reader.QueryRowContext(ctx, "SELECT report FROM reconcile_reports WHERE source = ? AND provider = ? AND day = ?",
		source, provider, day).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("reconciliation report", source+" "+provider+" "+day)
	}
	if err != nil {
		return nil, storageErr(err, "read reconciliation report")
	}
	var r reconcile.Report
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, market.Internal(err, "decode reconciliation report")
	}
	return &r, nil
}

// Reports implements reconcile.Store: newest day first.
func (s *ReconcileStore) Reports(ctx context.Context, f reconcile.Filter) ([]reconcile.Summary, int, error) {
	var w where
	for _, c := range []struct{ cond, v string }{
		{"source = ?", f.Source}, {"provider = ?", f.Provider}, {"day >= ?", f.From}, {"day <= ?", f.To},
	} {
		if c.v != "" {
			w.add(c.cond, c.v)
		}
	}
	if f.OK != nil {
		w.add("ok = ?", *f.OK)
	}
	total, err := s.db.count(ctx, "reconcile_reports", &w)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.reader.QueryContext(ctx, "SELECT report FROM reconcile_reports"+w.sql()+
		" ORDER BY day DESC, provider, source LIMIT ? OFFSET ?", pageArgs(&w, f.Page)...)
	if err != nil {
		return nil, 0, storageErr(err, "list reconciliation reports")
	}
	defer rows.Close()
	list := []reconcile.Summary{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, 0, storageErr(err, "list reconciliation reports")
		}
		var r reconcile.Report
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, 0, market.Internal(err, "decode reconciliation report")
		}
		list = append(list, r.Summary)
	}
	return list, total, storageErr(rows.Err(), "list reconciliation reports")
}
