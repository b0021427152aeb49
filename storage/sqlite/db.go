// Package sqlite implements market.Store on an embedded SQLite database
// (mattn/go-sqlite3) in WAL mode: one writer connection that serializes
// all write transactions, and a pool of read-only connections. The schema
// comes from embedded, versioned goose migrations applied at Open.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/pressly/goose/v3"

	"github.com/vmarket/vmarket/market"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tunes the database.
type Options struct {
	// BusyTimeout is how long a connection waits on a lock (default 5 s).
	BusyTimeout time.Duration
	// Readers is the size of the read pool (default 2×GOMAXPROCS, at least 4).
	Readers int
	// Logger receives migration logs (default: discarded).
	Logger *slog.Logger
}

// DB is the SQLite store. It is safe for concurrent use.
type DB struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	queries
}

// Open opens (creating if needed) the database file at path, applies
// pending migrations and returns the store.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Readers <= 0 {
		opts.Readers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	params.Set("_foreign_keys", "on")
	params.Set("_synchronous", "NORMAL")
	params.Set("_txlock", "immediate")
	// Keep prepared statements per connection: the same few queries run
	// all the time, and preparing is a good part of their cost.
	params.Set("_stmt_cache_size", "128")
	writer, err := sql.Open("sqlite3", "file:"+path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// serializing in the pool avoids SQLITE_BUSY between our own writers.
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxIdleTime(0)
	writer.SetConnMaxLifetime(0)
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(ctx, writer, opts.Logger); err != nil {
		writer.Close()
		return nil, err
	}
	params.Del("_txlock")
	params.Set("_query_only", "true")
	reader, err := sql.Open("sqlite3", "file:"+path+"?"+params.Encode())
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	reader.SetMaxOpenConns(opts.Readers)
	reader.SetMaxIdleConns(opts.Readers)
	reader.SetConnMaxIdleTime(0)
	db := &DB{path: path, writer: writer, reader: reader}
	db.queries = queries{q: reader, decoded: newDecodeCache(4096)}
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub, goose.WithSlog(log), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range res {
		log.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path)
	}
	return nil
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.reader.Close(), db.writer.Close())
}

// Update runs fn in one immediate write transaction on the writer
// connection.
func (db *DB) Update(ctx context.Context, fn func(tx market.Tx) error) (err error) {
	sqlTx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return storageErr(err, "begin transaction")
	}
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&tx{queries{q: sqlTx, decoded: db.decoded}}); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return storageErr(err, "commit")
	}
	return nil
}

// tx is one write transaction: the reads of queries plus the writes.
type tx struct{ queries }

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queries implements the store's reads over a querier.
type queries struct {
	q       querier
	decoded *decodeCache
}

// storageErr maps database errors to market errors: unique violations to
// KindConflict, busy to KindBusy, cancellation as is, the rest internal.
func storageErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch {
		case se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey:
			return &market.Error{Kind: market.KindConflict, Message: "already exists", Err: err}
		case se.ExtendedCode == sqlite3.ErrConstraintForeignKey:
			return &market.Error{Kind: market.KindInvalid, Message: "refers to something that does not exist", Err: err}
		case se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked:
			return &market.Error{Kind: market.KindBusy, Message: "database busy, retry", Err: err}
		}
	}
	return market.Internal(err, "%s", what)
}

// placeholders returns "?,?,…" for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
