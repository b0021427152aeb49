package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
)

// OperatorStore is operator.Store on the database: modules, hooks,
// settings, users, signing keys and run records.
type OperatorStore struct {
	db *DB
	opQueries
}

// Operator returns the database's operator store.
func (db *DB) Operator() *OperatorStore {
	return &OperatorStore{db: db, opQueries: opQueries{q: db.reader}}
}

var _ operator.Store = (*OperatorStore)(nil)

// opQueries implements operator.Reader over a querier.
type opQueries struct{ q querier }

// opTx is one write transaction of the operator store.
type opTx struct{ opQueries }

// Update implements operator.Store.
func (s *OperatorStore) Update(ctx context.Context, fn func(tx operator.Tx) error) error {
	sqlTx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return storageErr(err, "begin transaction")
	}
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&opTx{opQueries{q: sqlTx}}); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return storageErr(err, "commit")
	}
	return nil
}

// InsertRuns implements operator.Store: one transaction, one prepared
// statement.
func (s *OperatorStore) InsertRuns(ctx context.Context, runs []operator.Run) error {
	if len(runs) == 0 {
		return nil
	}
	sqlTx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return storageErr(err, "begin transaction")
	}
	stmt, err := sqlTx.PrepareContext(ctx, `INSERT INTO op_runs (kind, name, event, version, order_id, provider,
		started, duration_us, ok, error, error_line, limit_hit, rejected, logs, logs_dropped, result, modules,
		instructions, http_requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		sqlTx.Rollback()
		return storageErr(err, "insert runs")
	}
	defer stmt.Close()
	for i := range runs {
		r := &runs[i]
		logs, mods := "", ""
		if len(r.Logs) > 0 {
			logs = mustJSON(r.Logs)
		}
		if len(r.Modules) > 0 {
			mods = strings.Join(r.Modules, ",")
		}
		res, err := stmt.ExecContext(ctx, r.Kind, r.Name, r.Event, r.Version, r.OrderID, r.Provider,
			r.Started.UnixMilli(), int64(r.Duration*1000), r.OK, r.Error, r.ErrorLine, r.Limit, r.Rejected,
			logs, r.LogsDropped, r.Result, mods, r.Instructions, r.HTTPRequests)
		if err != nil {
			sqlTx.Rollback()
			return storageErr(err, "insert runs")
		}
		r.ID, _ = res.LastInsertId()
	}
	if err := sqlTx.Commit(); err != nil {
		return storageErr(err, "commit runs")
	}
	return nil
}

// OrderStatusCounts counts orders by status (for metrics).
func (db *DB) OrderStatusCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.reader.QueryContext(ctx, "SELECT status, COUNT(*) FROM orders GROUP BY status")
	if err != nil {
		return nil, storageErr(err, "count orders")
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, storageErr(err, "count orders")
		}
		out[st] = n
	}
	return out, storageErr(rows.Err(), "count orders")
}

// Modules implements operator.Reader.
func (q opQueries) Modules(ctx context.Context) ([]operator.Module, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT m.name, COALESCE(a.version, 0), COALESCE(am.hash, ''), MAX(m.version), COUNT(*),
		COALESCE(am.origin, (SELECT origin FROM op_modules l WHERE l.name = m.name ORDER BY version DESC LIMIT 1)),
		MAX(COALESCE(a.updated_at, 0), MAX(m.created_at))
		FROM op_modules m
		LEFT JOIN op_active a ON a.name = m.name
		LEFT JOIN op_modules am ON am.name = a.name AND am.version = a.version
		GROUP BY m.name ORDER BY m.name`)
	if err != nil {
		return nil, storageErr(err, "list modules")
	}
	defer rows.Close()
	var out []operator.Module
	for rows.Next() {
		var m operator.Module
		if err := rows.Scan(&m.Name, &m.Active, &m.ActiveHash, &m.Latest, &m.Versions, &m.Origin, &m.UpdatedAt); err != nil {
			return nil, storageErr(err, "list modules")
		}
		out = append(out, m)
	}
	return out, storageErr(rows.Err(), "list modules")
}

const moduleCols = `m.name, m.version, m.hash, m.origin, m.created_at, m.created_by, LENGTH(CAST(m.source AS BLOB)),
	a.version IS NOT NULL`

func scanModule(s interface{ Scan(...any) error }, withSource bool) (operator.ModuleVersion, error) {
	var m operator.ModuleVersion
	dst := []any{&m.Name, &m.Version, &m.Hash, &m.Origin, &m.CreatedAt, &m.CreatedBy, &m.Size, &m.Active}
	if withSource {
		dst = append(dst, &m.Source)
	}
	return m, s.Scan(dst...)
}

// ModuleVersions implements operator.Reader.
func (q opQueries) ModuleVersions(ctx context.Context, name string) ([]operator.ModuleVersion, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+moduleCols+` FROM op_modules m
		LEFT JOIN op_active a ON a.name = m.name AND a.version = m.version
		WHERE m.name = ? ORDER BY m.version DESC`, name)
	if err != nil {
		return nil, storageErr(err, "list module versions")
	}
	defer rows.Close()
	var out []operator.ModuleVersion
	for rows.Next() {
		m, err := scanModule(rows, false)
		if err != nil {
			return nil, storageErr(err, "list module versions")
		}
		out = append(out, m)
	}
	return out, storageErr(rows.Err(), "list module versions")
}

// ModuleVersion implements operator.Reader.
func (q opQueries) ModuleVersion(ctx context.Context, name string, version int) (*operator.ModuleVersion, error) {
	row := q.q.QueryRowContext(ctx, `SELECT `+moduleCols+`, m.source FROM op_modules m
		LEFT JOIN op_active a ON a.name = m.name AND a.version = m.version
		WHERE m.name = ? AND m.version = ?`, name, version)
	m, err := scanModule(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.Errorf(market.KindNotFound, "module %q has no version %d", name, version)
	}
	if err != nil {
		return nil, storageErr(err, "read module version")
	}
	return &m, nil
}

// ActiveModules implements operator.Reader.
func (q opQueries) ActiveModules(ctx context.Context) ([]operator.ModuleVersion, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT `+moduleCols+`, m.source FROM op_active a
		JOIN op_modules m ON m.name = a.name AND m.version = a.version ORDER BY m.name`)
	if err != nil {
		return nil, storageErr(err, "list active modules")
	}
	defer rows.Close()
	var out []operator.ModuleVersion
	for rows.Next() {
		m, err := scanModule(rows, true)
		if err != nil {
			return nil, storageErr(err, "list active modules")
		}
		out = append(out, m)
	}
	return out, storageErr(rows.Err(), "list active modules")
}

// Activations implements operator.Reader.
func (q opQueries) Activations(ctx context.Context, name string, limit int) ([]operator.Activation, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT name, version, at, by FROM op_activations WHERE name = ? ORDER BY id DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, storageErr(err, "list activations")
	}
	defer rows.Close()
	var out []operator.Activation
	for rows.Next() {
		var a operator.Activation
		if err := rows.Scan(&a.Name, &a.Version, &a.At, &a.By); err != nil {
			return nil, storageErr(err, "list activations")
		}
		out = append(out, a)
	}
	return out, storageErr(rows.Err(), "list activations")
}

// Hooks implements operator.Reader.
func (q opQueries) Hooks(ctx context.Context) ([]operator.Hook, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT id, event, module, function, origin, created_at, created_by FROM op_hooks ORDER BY id`)
	if err != nil {
		return nil, storageErr(err, "list hooks")
	}
	defer rows.Close()
	var out []operator.Hook
	for rows.Next() {
		var h operator.Hook
		if err := rows.Scan(&h.ID, &h.Event, &h.Module, &h.Function, &h.Origin, &h.CreatedAt, &h.CreatedBy); err != nil {
			return nil, storageErr(err, "list hooks")
		}
		out = append(out, h)
	}
	return out, storageErr(rows.Err(), "list hooks")
}

// Settings implements operator.Reader.
func (q opQueries) Settings(ctx context.Context) ([]operator.Setting, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT scope, key, value, secret, sealed, updated_at, updated_by FROM op_settings ORDER BY scope, key`)
	if err != nil {
		return nil, storageErr(err, "list settings")
	}
	defer rows.Close()
	var out []operator.Setting
	for rows.Next() {
		var s operator.Setting
		if err := rows.Scan(&s.Scope, &s.Key, &s.Value, &s.Secret, &s.Sealed, &s.UpdatedAt, &s.UpdatedBy); err != nil {
			return nil, storageErr(err, "list settings")
		}
		out = append(out, s)
	}
	return out, storageErr(rows.Err(), "list settings")
}

// Users implements operator.Reader.
func (q opQueries) Users(ctx context.Context) ([]operator.User, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT id, name, role, created_at, created_by, revoked_at FROM op_users ORDER BY name, created_at`)
	if err != nil {
		return nil, storageErr(err, "list users")
	}
	defer rows.Close()
	var out []operator.User
	for rows.Next() {
		var u operator.User
		if err := rows.Scan(&u.ID, &u.Name, &u.Role, &u.CreatedAt, &u.CreatedBy, &u.RevokedAt); err != nil {
			return nil, storageErr(err, "list users")
		}
		out = append(out, u)
	}
	return out, storageErr(rows.Err(), "list users")
}

// SigningKeys implements operator.Reader.
func (q opQueries) SigningKeys(ctx context.Context) ([]operator.SigningKey, error) {
	rows, err := q.q.QueryContext(ctx, `SELECT id, sealed, created_at, retired_at, current FROM op_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, storageErr(err, "list signing keys")
	}
	defer rows.Close()
	var out []operator.SigningKey
	for rows.Next() {
		var k operator.SigningKey
		if err := rows.Scan(&k.ID, &k.Sealed, &k.CreatedAt, &k.RetiredAt, &k.Current); err != nil {
			return nil, storageErr(err, "list signing keys")
		}
		out = append(out, k)
	}
	return out, storageErr(rows.Err(), "list signing keys")
}

const runCols = `id, kind, name, event, version, order_id, provider, started, duration_us, ok, error, error_line,
	limit_hit, rejected, logs, logs_dropped, result, modules, instructions, http_requests`

func scanRun(s interface{ Scan(...any) error }) (operator.Run, error) {
	var r operator.Run
	var started, durUS int64
	var logs, mods string
	err := s.Scan(&r.ID, &r.Kind, &r.Name, &r.Event, &r.Version, &r.OrderID, &r.Provider, &started, &durUS, &r.OK,
		&r.Error, &r.ErrorLine, &r.Limit, &r.Rejected, &logs, &r.LogsDropped, &r.Result, &mods, &r.Instructions, &r.HTTPRequests)
	if err != nil {
		return r, err
	}
	r.Started, r.Duration = time.UnixMilli(started).UTC(), float64(durUS)/1000
	if logs != "" {
		if err := json.Unmarshal([]byte(logs), &r.Logs); err != nil {
			return r, fmt.Errorf("run %d logs: %w", r.ID, err)
		}
	}
	if mods != "" {
		r.Modules = strings.Split(mods, ",")
	}
	return r, nil
}

// Runs implements operator.Reader.
func (q opQueries) Runs(ctx context.Context, f operator.RunFilter) ([]operator.Run, int, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if f.Name != "" {
		add("name = ?", f.Name)
	}
	if f.Event != "" {
		add("event = ?", f.Event)
	}
	if f.OrderID != "" {
		add("order_id = ?", f.OrderID)
	}
	if f.Provider != "" {
		add("provider = ?", f.Provider)
	}
	if f.OK != nil {
		add("ok = ?", *f.OK)
	}
	if !f.From.IsZero() {
		add("started >= ?", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		add("started <= ?", f.To.UnixMilli())
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := q.q.QueryRowContext(ctx, "SELECT COUNT(*) FROM op_runs"+cond, args...).Scan(&total); err != nil {
		return nil, 0, storageErr(err, "count runs")
	}
	rows, err := q.q.QueryContext(ctx, "SELECT "+runCols+" FROM op_runs"+cond+" ORDER BY id DESC LIMIT ? OFFSET ?",
		append(args, f.Page.PageSize, f.Page.Offset())...)
	if err != nil {
		return nil, 0, storageErr(err, "list runs")
	}
	defer rows.Close()
	var out []operator.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, storageErr(err, "list runs")
		}
		out = append(out, r)
	}
	return out, total, storageErr(rows.Err(), "list runs")
}

// Run implements operator.Reader.
func (q opQueries) Run(ctx context.Context, id int64) (*operator.Run, error) {
	r, err := scanRun(q.q.QueryRowContext(ctx, "SELECT "+runCols+" FROM op_runs WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("run", fmt.Sprint(id))
	}
	if err != nil {
		return nil, storageErr(err, "read run")
	}
	return &r, nil
}

// AddModuleVersion implements operator.Tx.
func (t *opTx) AddModuleVersion(ctx context.Context, m *operator.ModuleVersion) error {
	var latest int
	if err := t.q.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM op_modules WHERE name = ?", m.Name).Scan(&latest); err != nil {
		return storageErr(err, "add module version")
	}
	m.Version = latest + 1
	_, err := t.q.ExecContext(ctx, `INSERT INTO op_modules (name, version, hash, source, origin, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, m.Name, m.Version, m.Hash, m.Source, m.Origin, m.CreatedAt, m.CreatedBy)
	return storageErr(err, "add module version")
}

// SetActive implements operator.Tx.
func (t *opTx) SetActive(ctx context.Context, name string, version int, by string, at int64) error {
	var err error
	if version == 0 {
		_, err = t.q.ExecContext(ctx, "DELETE FROM op_active WHERE name = ?", name)
	} else {
		_, err = t.q.ExecContext(ctx, `INSERT INTO op_active (name, version, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`, name, version, at)
	}
	if err != nil {
		return storageErr(err, "activate module")
	}
	_, err = t.q.ExecContext(ctx, "INSERT INTO op_activations (name, version, at, by) VALUES (?, ?, ?, ?)", name, version, at, by)
	return storageErr(err, "activate module")
}

// DeleteModule implements operator.Tx.
func (t *opTx) DeleteModule(ctx context.Context, name string) error {
	for _, q := range []string{"DELETE FROM op_active WHERE name = ?", "DELETE FROM op_modules WHERE name = ?", "DELETE FROM op_activations WHERE name = ?"} {
		if _, err := t.q.ExecContext(ctx, q, name); err != nil {
			return storageErr(err, "delete module")
		}
	}
	return nil
}

// DeleteModuleVersion implements operator.Tx.
func (t *opTx) DeleteModuleVersion(ctx context.Context, name string, version int) error {
	_, err := t.q.ExecContext(ctx, "DELETE FROM op_modules WHERE name = ? AND version = ?", name, version)
	return storageErr(err, "delete module version")
}

// AddHook implements operator.Tx.
func (t *opTx) AddHook(ctx context.Context, h *operator.Hook) error {
	res, err := t.q.ExecContext(ctx, `INSERT INTO op_hooks (event, module, function, origin, created_at, created_by)
		VALUES (?, ?, ?, ?, ?, ?)`, h.Event, h.Module, h.Function, h.Origin, h.CreatedAt, h.CreatedBy)
	if err != nil {
		return storageErr(err, "add hook")
	}
	h.ID, _ = res.LastInsertId()
	return nil
}

// DeleteHook implements operator.Tx.
func (t *opTx) DeleteHook(ctx context.Context, id int64) (bool, error) {
	res, err := t.q.ExecContext(ctx, "DELETE FROM op_hooks WHERE id = ?", id)
	if err != nil {
		return false, storageErr(err, "delete hook")
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// DeleteHooksOf implements operator.Tx.
func (t *opTx) DeleteHooksOf(ctx context.Context, origin string) error {
	_, err := t.q.ExecContext(ctx, "DELETE FROM op_hooks WHERE origin = ?", origin)
	return storageErr(err, "delete hooks")
}

// PutSetting implements operator.Tx.
func (t *opTx) PutSetting(ctx context.Context, s *operator.Setting) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO op_settings (scope, key, value, secret, sealed, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, secret = excluded.secret,
		sealed = excluded.sealed, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		s.Scope, s.Key, s.Value, s.Secret, s.Sealed, s.UpdatedAt, s.UpdatedBy)
	return storageErr(err, "store setting")
}

// DeleteSetting implements operator.Tx.
func (t *opTx) DeleteSetting(ctx context.Context, scope, key string) (bool, error) {
	res, err := t.q.ExecContext(ctx, "DELETE FROM op_settings WHERE scope = ? AND key = ?", scope, key)
	if err != nil {
		return false, storageErr(err, "delete setting")
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// PutUser implements operator.Tx.
func (t *opTx) PutUser(ctx context.Context, u *operator.User) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO op_users (id, name, role, created_at, created_by, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET role = excluded.role, revoked_at = excluded.revoked_at`,
		u.ID, u.Name, u.Role, u.CreatedAt, u.CreatedBy, u.RevokedAt)
	return storageErr(err, "store user")
}

// PutSigningKey implements operator.Tx.
func (t *opTx) PutSigningKey(ctx context.Context, k *operator.SigningKey) error {
	if k.Current {
		if _, err := t.q.ExecContext(ctx, "UPDATE op_keys SET current = 0"); err != nil {
			return storageErr(err, "store signing key")
		}
	}
	_, err := t.q.ExecContext(ctx, `INSERT INTO op_keys (id, sealed, created_at, retired_at, current) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, retired_at = excluded.retired_at, current = excluded.current`,
		k.ID, k.Sealed, k.CreatedAt, k.RetiredAt, k.Current)
	return storageErr(err, "store signing key")
}
