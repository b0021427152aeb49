package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
)

// Job times (run_at, lease_until) are unix milliseconds.

// LeaseJobs implements market.JobQueue in one write transaction.
func (db *DB) LeaseJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]market.Job, error) {
	var out []market.Job
	err := db.Update(ctx, func(mtx market.Tx) error {
		t := mtx.(*tx)
		out = out[:0]
		nowMs := now.UnixMilli()
		// Due queued jobs whose lease is free, one per order, skipping
		// orders with a job under a live lease.
		rows, err := t.q.QueryContext(ctx, `SELECT id, order_id, kind, run_at, attempts, last_error FROM jobs j
			WHERE state = 'queued' AND run_at <= ? AND lease_until < ?
			AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.order_id = j.order_id AND k.state = 'queued' AND k.lease_until >= ?)
			AND id = (SELECT MIN(id) FROM jobs m WHERE m.order_id = j.order_id AND m.state = 'queued' AND m.run_at <= ?)
			ORDER BY run_at, id LIMIT ?`, nowMs, nowMs, nowMs, nowMs, limit)
		if err != nil {
			return storageErr(err, "lease jobs")
		}
		for rows.Next() {
			var j market.Job
			var kind string
			var runAt int64
			if err := rows.Scan(&j.ID, &j.OrderID, &kind, &runAt, &j.Attempts, &j.LastError); err != nil {
				rows.Close()
				return storageErr(err, "lease jobs")
			}
			j.Kind, j.State, j.RunAt = market.JobKind(kind), market.JobQueued, time.UnixMilli(runAt)
			out = append(out, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return storageErr(err, "lease jobs")
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]any, 0, len(out)+2)
		ids = append(ids, owner, now.Add(lease).UnixMilli())
		for _, j := range out {
			ids = append(ids, j.ID)
		}
		_, err = t.q.ExecContext(ctx, "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ("+placeholders(len(out))+")", ids...)
		return storageErr(err, "lease jobs")
	})
	return out, err
}

// QueueDepth implements market.JobQueue.
func (q queries) QueueDepth(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := q.q.QueryRowContext(ctx, "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND run_at <= ?", now.UnixMilli()).Scan(&n)
	return n, storageErr(err, "queue depth")
}

// EnqueueJob implements market.JobWriter.
func (t *tx) EnqueueJob(ctx context.Context, j *market.Job) error {
	res, err := t.q.ExecContext(ctx, "INSERT INTO jobs (order_id, kind, run_at, created_at) VALUES (?, ?, ?, ?)",
		j.OrderID, string(j.Kind), j.RunAt.UnixMilli(), time.Now().Unix())
	if err != nil {
		return storageErr(err, "queue job")
	}
	j.ID, _ = res.LastInsertId()
	j.State = market.JobQueued
	return nil
}

// FinishJob implements market.JobWriter.
func (t *tx) FinishJob(ctx context.Context, j *market.Job, owner string, state market.JobState, lastError string, now time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE jobs SET state = ?, last_error = ?, finished_at = ?, lease_until = 0, attempts = attempts + 1
		WHERE id = ? AND state = 'queued' AND lease_owner = ? AND lease_until >= ?`,
		string(state), lastError, now.Unix(), j.ID, owner, now.UnixMilli())
	return leaseHeld(res, err, j)
}

// leaseHeld checks an UPDATE guarded by lease ownership changed its row.
func leaseHeld(res sql.Result, err error, j *market.Job) error {
	if err != nil {
		return storageErr(err, "update job")
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return market.Errorf(market.KindConflict, "job %d (%s of order %s): lease lost", j.ID, j.Kind, j.OrderID)
	}
	return nil
}

// RetryJob implements market.JobWriter.
func (t *tx) RetryJob(ctx context.Context, j *market.Job, owner string, runAt time.Time, lastError string, now time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE jobs SET run_at = ?, last_error = ?, lease_owner = '', lease_until = 0, attempts = attempts + 1
		WHERE id = ? AND state = 'queued' AND lease_owner = ? AND lease_until >= ?`,
		runAt.UnixMilli(), lastError, j.ID, owner, now.UnixMilli())
	return leaseHeld(res, err, j)
}

// CancelJobs implements market.JobWriter.
func (t *tx) CancelJobs(ctx context.Context, orderID, owner string, now time.Time, kinds ...market.JobKind) error {
	if len(kinds) == 0 {
		return nil
	}
	args := []any{now.Unix(), orderID, owner, now.UnixMilli()}
	ks := make([]string, len(kinds))
	for i, k := range kinds {
		ks[i] = "?"
		args = append(args, string(k))
	}
	_, err := t.q.ExecContext(ctx, fmt.Sprintf(`UPDATE jobs SET state = 'cancelled', finished_at = ?
		WHERE order_id = ? AND state = 'queued' AND (lease_owner = ? OR lease_until < ?) AND kind IN (%s)`, strings.Join(ks, ",")), args...)
	return storageErr(err, "cancel jobs")
}

// QueuedJob implements market.JobWriter.
func (t *tx) QueuedJob(ctx context.Context, orderID string, kind market.JobKind) (*market.Job, error) {
	var j market.Job
	var runAt int64
	err := t.q.QueryRowContext(ctx, "SELECT id, order_id, run_at, attempts, last_error FROM jobs WHERE order_id = ? AND kind = ? AND state = 'queued' ORDER BY id LIMIT 1",
		orderID, string(kind)).Scan(&j.ID, &j.OrderID, &runAt, &j.Attempts, &j.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, storageErr(err, "read job")
	}
	j.Kind, j.State, j.RunAt = kind, market.JobQueued, time.UnixMilli(runAt)
	return &j, nil
}
