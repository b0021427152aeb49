package operator_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const auditHook = `local M = {}
function M.before_order_create(e)
  if e.address == "blocked" then return {reject = "address blocked"} end
end
function M.on_order_paid(e) end
function M.helper() end
return M
`

// TestHooksDirReload watches a directory: changes are picked up, a broken
// file is reported and its previous version keeps serving, deleted files
// take their modules and hooks with them.
func TestHooksDirReload(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "modules", "greet.lua"), `return {v = "one"}`)
	writeFile(t, filepath.Join(dir, "modules", "pkg", "util.lua"), `return {v = "util"}`)
	writeFile(t, filepath.Join(dir, "hooks", "audit.lua"), auditHook)
	stop, err := f.svc.WatchDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	greet := func() any {
		res, err := f.engine.Run(context.Background(), runtime.Script{Name: "t", Source: `return {v = require("greet").v}`},
			nil, runtime.RunOptions{Resolver: f.svc.RunResolver()})
		if err != nil {
			return err.Error()
		}
		return res.Map()["v"]
	}
	status := func() *operator.DirStatus {
		st, err := f.svc.DirState(context.Background(), support)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	fileOf := func(st *operator.DirStatus, path string) operator.DirFile {
		for _, fl := range st.Files {
			if fl.Path == path {
				return fl
			}
		}
		return operator.DirFile{}
	}
	if v := greet(); v != "one" {
		t.Fatalf("first load: %v", v)
	}
	st := status()
	if len(st.Files) != 3 || fileOf(st, "modules/pkg/util.lua").Module != "pkg.util" {
		t.Fatalf("status: %+v", st)
	}
	if hooks := fileOf(st, "hooks/audit.lua"); !hooks.OK || len(hooks.Events) != 2 {
		t.Fatalf("hook file: %+v", hooks)
	}
	if err := f.svc.Before(context.Background(), market.BeforeOrderCreate, map[string]any{"address": "blocked"}); kindOf(err) != market.KindForbidden {
		t.Fatalf("dir hook did not reject: %v", err)
	}

	writeFile(t, filepath.Join(dir, "modules", "greet.lua"), `return {v = "two"}`)
	waitFor(t, "changed module", func() bool { return greet() == "two" })

	// Broken files: reported with their line, the old versions serve on.
	writeFile(t, filepath.Join(dir, "modules", "greet.lua"), "local x = 1\nreturn {v = }\n")
	writeFile(t, filepath.Join(dir, "hooks", "audit.lua"), "local M = {}\nerror('broken at load')\nreturn M\n")
	waitFor(t, "broken files reported", func() bool {
		st := status()
		return !fileOf(st, "modules/greet.lua").OK && !fileOf(st, "hooks/audit.lua").OK
	})
	st = status()
	if g := fileOf(st, "modules/greet.lua"); g.Line != 2 || g.Version != 2 || g.Error == "" {
		t.Fatalf("broken module: %+v", g)
	}
	if a := fileOf(st, "hooks/audit.lua"); a.Line != 2 || a.Version != 1 {
		t.Fatalf("broken hook: %+v", a)
	}
	if v := greet(); v != "two" {
		t.Fatalf("broken file replaced the serving version: %v", v)
	}
	if err := f.svc.Before(context.Background(), market.BeforeOrderCreate, map[string]any{"address": "blocked"}); kindOf(err) != market.KindForbidden {
		t.Fatalf("broken hook file unbound the old hook: %v", err)
	}

	// Deleting the hook file removes its module and bindings.
	if err := os.Remove(filepath.Join(dir, "hooks", "audit.lua")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hook removed", func() bool {
		return f.svc.Before(context.Background(), market.BeforeOrderCreate, map[string]any{"address": "blocked"}) == nil
	})
	list, err := f.svc.ListHooks(context.Background(), admin)
	if err != nil || len(list.Hooks) != 0 {
		t.Fatalf("hooks left: %+v %v", list, err)
	}
	if st := status(); st.Error != "" || st.Changes < 3 {
		t.Fatalf("status: %+v", st)
	}
}

func TestLoadDirMissing(t *testing.T) {
	f := newFixture(t)
	missing := filepath.Join(t.TempDir(), "nope")
	st, err := f.svc.LoadDir(context.Background(), missing)
	if err == nil || st.Error == "" {
		t.Fatalf("missing directory: %+v %v", st, err)
	}
	if _, err := f.svc.WatchDir(context.Background(), missing); err == nil {
		t.Fatal("watching a missing directory")
	}
}
