package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/storage/sqlite"
	"github.com/vmarket/vmarket/templates"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return db
}

// bundled loads the bundled templates with their public URL placeholder
// filled in, as the server does before applying them.
func bundled(t *testing.T) []templates.Bundle {
	t.Helper()
	bs, err := templates.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) == 0 {
		t.Fatal("no bundled templates")
	}
	for _, b := range bs {
		templates.Expand(b.Template, "http://127.0.0.1:8080")
	}
	return bs
}

// catalogState is every id of the catalog and the row counts.
func catalogState(t *testing.T, db *sqlite.DB) []string {
	t.Helper()
	ctx := context.Background()
	page := market.Page{Current: 1, PageSize: market.MaxPageSize}
	var out []string
	ps, np, err := db.Providers(ctx, market.ProviderFilter{Page: page})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		out = append(out, "provider "+p.ID+" "+fmt.Sprint(p.Category2ID))
	}
	cs, nc, err := db.Categories(ctx, market.CategoryFilter{Page: page})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, "category "+c.Provider+"/"+c.Name+" "+c.ID+" "+fmt.Sprint(c.Name2ID))
	}
	ts, nt, err := db.ServiceTypes(ctx, market.ServiceTypeFilter{Page: page})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range ts {
		out = append(out, "type "+st.Category+"/"+st.Name+" "+st.ID)
	}
	out = append(out, fmt.Sprintf("counts %d %d %d", np, nc, nt))
	sort.Strings(out)
	return out
}

// TestRestartIdempotent opens a data directory, applies the bundled
// templates, closes it, reopens it and applies them again: nothing is
// created twice and every id stays.
func TestRestartIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "vmarket.db")
	apply := func(db *sqlite.DB, bs []templates.Bundle) (applied int) {
		t.Helper()
		cat := market.NewCatalog(db, luascript.Compiler{})
		for _, b := range bs {
			ok, err := cat.ApplyBundledTemplate(ctx, b.Name, b.Hash, b.Template)
			if err != nil {
				t.Fatalf("apply %s: %v", b.Name, err)
			}
			if ok {
				applied++
			}
		}
		return applied
	}

	db := open(t, path)
	bs := bundled(t)
	if n := apply(db, bs); n != len(bs) {
		t.Fatalf("first start applied %d of %d templates", n, len(bs))
	}
	first := catalogState(t, db)
	if len(first) < 4 {
		t.Fatalf("catalog after first start: %v", first)
	}
	if n := apply(db, bundled(t)); n != 0 {
		t.Errorf("same process applied %d templates again", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		db = open(t, path)
		if n := apply(db, bundled(t)); n != 0 {
			t.Errorf("restart %d applied %d templates again", i+1, n)
		}
		if got := catalogState(t, db); !reflect.DeepEqual(got, first) {
			t.Errorf("restart %d changed the catalog:\n got %v\nwant %v", i+1, got, first)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// A new version of a bundled template (another content hash) updates
	// the tree in place: same ids, same counts.
	db = open(t, path)
	defer db.Close()
	bs = bundled(t)
	bs[0].Hash = "changed-" + bs[0].Hash
	bs[0].Template.Categories[0].ServiceTypes[0].Description = "new version"
	if n := apply(db, bs[:1]); n != 1 {
		t.Fatalf("changed template applied %d times, want 1", n)
	}
	if got := catalogState(t, db); !reflect.DeepEqual(got, first) {
		t.Errorf("a new template version changed ids or counts:\n got %v\nwant %v", got, first)
	}
	list, _, err := db.ServiceTypes(ctx, market.ServiceTypeFilter{Name: bs[0].Template.Categories[0].ServiceTypes[0].Name, Page: market.Page{Current: 1, PageSize: 10}})
	if err != nil || len(list) != 1 || list[0].Description != "new version" {
		t.Errorf("updated type: %+v, %v", list, err)
	}
}

func TestUpdateRollsBack(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	defer db.Close()
	prov := func(name string) *market.Provider {
		return &market.Provider{ID: name, Name: name, WalletAddress: "w", APIHost: "h", CreatedAt: 1, UpdatedAt: 1}
	}
	boom := errors.New("boom")
	err := db.Update(ctx, func(tx market.Tx) error {
		if err := tx.CreateProvider(ctx, prov("a")); err != nil {
			return err
		}
		// The transaction sees its own write.
		if _, err := tx.Provider(ctx, "a"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if _, err := db.Provider(ctx, "a"); market.KindOf(err) != market.KindNotFound {
		t.Errorf("rolled back provider found: %v", err)
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic not passed on")
			}
		}()
		_ = db.Update(ctx, func(tx market.Tx) error {
			if err := tx.CreateProvider(ctx, prov("b")); err != nil {
				return err
			}
			panic("in transaction")
		})
	}()
	if _, err := db.Provider(ctx, "b"); market.KindOf(err) != market.KindNotFound {
		t.Errorf("provider of a panicked transaction found: %v", err)
	}
	// The writer is usable after both.
	if err := db.Update(ctx, func(tx market.Tx) error { return tx.CreateProvider(ctx, prov("c")) }); err != nil {
		t.Fatal(err)
	}
}

func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	defer db.Close()
	p := &market.Provider{ID: "p", Name: "p", WalletAddress: "w", APIHost: "h"}
	c := &market.Category{ID: "c1", Provider: "p", Name: "cat", ServiceOptions: market.Options{}}
	if err := db.Update(ctx, func(tx market.Tx) error {
		if err := tx.CreateProvider(ctx, p); err != nil {
			return err
		}
		return tx.CreateCategory(ctx, c)
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func(tx market.Tx) error
		kind market.Kind
	}{
		{"provider twice", func(tx market.Tx) error { return tx.CreateProvider(ctx, p) }, market.KindConflict},
		{"category name twice", func(tx market.Tx) error {
			return tx.CreateCategory(ctx, &market.Category{ID: "c2", Provider: "p", Name: "cat"})
		}, market.KindConflict},
		{"category of no provider", func(tx market.Tx) error {
			return tx.CreateCategory(ctx, &market.Category{ID: "c3", Provider: "nobody", Name: "x"})
		}, market.KindInvalid},
		{"type of no category", func(tx market.Tx) error {
			return tx.CreateServiceType(ctx, &market.ServiceType{ID: "t", Provider: "p", CategoryID: "none", Name: "t"})
		}, market.KindInvalid},
		{"type with unknown script hash", func(tx market.Tx) error {
			st := &market.ServiceType{ID: "t", Provider: "p", CategoryID: "c1", Name: "t"}
			st.ServiceAPI.Start = market.Script{Encoded: "x", Hash: "no-such-hash"}
			return tx.CreateServiceType(ctx, st)
		}, market.KindInvalid},
		{"update unknown provider", func(tx market.Tx) error {
			return tx.UpdateProvider(ctx, &market.Provider{ID: "nobody"})
		}, market.KindNotFound},
		{"update unknown category", func(tx market.Tx) error {
			return tx.UpdateCategory(ctx, &market.Category{ID: "none"})
		}, market.KindNotFound},
		{"update unknown type", func(tx market.Tx) error {
			return tx.UpdateServiceType(ctx, &market.ServiceType{ID: "none"})
		}, market.KindNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.Update(ctx, tc.fn)
			if market.KindOf(err) != tc.kind {
				t.Errorf("error %v has kind %q, want %q", err, market.KindOf(err), tc.kind)
			}
		})
	}
	for _, fn := range []func() error{
		func() error { _, err := db.Provider(ctx, "x"); return err },
		func() error { _, err := db.Category(ctx, "x"); return err },
		func() error { _, err := db.CategoryByName(ctx, "p", "x"); return err },
		func() error { _, err := db.ServiceType(ctx, "x"); return err },
		func() error { _, err := db.ServiceTypeByName(ctx, "c1", "x"); return err },
		func() error { _, err := db.ScriptSource(ctx, "x"); return err },
	} {
		if err := fn(); market.KindOf(err) != market.KindNotFound {
			t.Errorf("lookup of a missing row: %v, want not found", err)
		}
	}
}

// TestOpenSettings checks the database file's settings and that migrations
// are applied once.
func TestOpenSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "v.db")
	for range 2 {
		db := open(t, path)
		if db.Path() != path {
			t.Errorf("Path %q", db.Path())
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var mode string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v; want wal", mode, err)
	}
	var applied int
	if err := raw.QueryRow("SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0 AND is_applied").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	var distinct int
	if err := raw.QueryRow("SELECT COUNT(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0").Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if applied == 0 || applied != distinct {
		t.Errorf("%d migration rows for %d versions: migrations ran more than once", applied, distinct)
	}
}

// TestConcurrentWritesAndReads runs writers and readers at once: every
// write lands, no reader or writer sees a busy error.
func TestConcurrentWritesAndReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := open(t, filepath.Join(t.TempDir(), "v.db"))
	defer db.Close()
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errc := make(chan error, writers*each*2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("p-%d-%d", w, i)
				errc <- db.Update(ctx, func(tx market.Tx) error {
					return tx.CreateProvider(ctx, &market.Provider{ID: name, Name: name, WalletAddress: "w", APIHost: "h"})
				})
			}
		})
		wg.Go(func() {
			for range each {
				_, _, err := db.Providers(ctx, market.ProviderFilter{Page: market.Page{Current: 1, PageSize: 100}})
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	_, total, err := db.Providers(ctx, market.ProviderFilter{Page: market.Page{Current: 1, PageSize: 1}})
	if err != nil || total != writers*each {
		t.Errorf("%d providers, %v; want %d", total, err, writers*each)
	}
}
