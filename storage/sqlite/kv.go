package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/vmarket/vmarket/runtime"
)

// KV is the scripts' key-value store (runtime.KV) on the database.
type KV struct{ db *DB }

// KV returns the database's script key-value store.
func (db *DB) KV() *KV { return &KV{db: db} }

// Get implements runtime.KV.
func (k *KV) Get(ctx context.Context, scope, key string) (string, bool, error) {
	var v string
	err := k.db.reader.QueryRowContext(ctx, "SELECT value FROM kv WHERE scope = ? AND key = ?", scope, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, storageErr(err, "kv get")
	}
	return v, true, nil
}

// Set implements runtime.KV.
func (k *KV) Set(ctx context.Context, scope, key, value string) error {
	_, err := k.db.writer.ExecContext(ctx, `INSERT INTO kv (scope, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		scope, key, value, time.Now().Unix())
	return storageErr(err, "kv set")
}

// Delete implements runtime.KV.
func (k *KV) Delete(ctx context.Context, scope, key string) error {
	_, err := k.db.writer.ExecContext(ctx, "DELETE FROM kv WHERE scope = ? AND key = ?", scope, key)
	return storageErr(err, "kv delete")
}

// List implements runtime.KV.
func (k *KV) List(ctx context.Context, scope, prefix string, limit int) ([]runtime.KVPair, error) {
	// Prefix match by range, so LIKE wildcards in prefix mean nothing.
	q := "SELECT key, value FROM kv WHERE scope = ? AND key >= ?"
	args := []any{scope, prefix}
	if prefix != "" {
		q += " AND key < ?"
		args = append(args, prefixEnd(prefix))
	}
	q += " ORDER BY key LIMIT ?"
	args = append(args, limit)
	rows, err := k.db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, storageErr(err, "kv list")
	}
	defer rows.Close()
	var out []runtime.KVPair
	for rows.Next() {
		var p runtime.KVPair
		if err := rows.Scan(&p.Key, &p.Value); err != nil {
			return nil, storageErr(err, "kv list")
		}
		out = append(out, p)
	}
	return out, storageErr(rows.Err(), "kv list")
}

// prefixEnd is the smallest string greater than every string with prefix
// p (p with its last byte incremented, carrying past 0xff).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return strings.Repeat("\xff", len(p)+1)
}

var _ runtime.KV = (*KV)(nil)
