package templates_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts"
)

// templateModule is the test-only host module "template":
// template.source(name) returns the text of a file of the template folder
// under test, so a Lua test can run a lifecycle script with
// load(template.source("start.lua"))(input).
func templateModule(dir string) runtime.HostModule {
	fsys := os.DirFS(dir)
	return runtime.HostModuleFunc(func(L *lua.LState) *lua.LTable {
		t := L.NewTable()
		t.RawSetString("source", L.NewFunction(func(L *lua.LState) int {
			b, err := fs.ReadFile(fsys, L.CheckString(1))
			if err != nil {
				L.RaiseError("template.source: %v", err)
			}
			L.Push(lua.LString(b))
			return 1
		}))
		return t
	})
}

// runTemplateLuaTests runs the *_test.lua files of a bundled template
// folder with the bundled modules (embedded tree), the "template" module
// and the given test-only host modules (the fakes' controls).
func runTemplateLuaTests(t *testing.T, dir string, modules map[string]runtime.HostModule, cfg luatest.Config) {
	t.Helper()
	mods := map[string]runtime.HostModule{"template": templateModule(dir)}
	for name, m := range modules {
		mods[name] = m
	}
	eng, err := runtime.NewEngine(runtime.Options{Modules: mods, KV: runtime.NewMemoryKV(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cfg.Engine = eng
	cfg.Modules = runtime.FSResolver(scripts.FS())
	cfg.ModuleDirs = []string{"."}
	cfg.AllowedHosts = append(cfg.AllowedHosts, "127.0.0.1")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rep, err := luatest.Run(ctx, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Write(&buf, testing.Verbose())
	if !rep.OK() {
		t.Fatalf("Lua tests of %s failed:\n%s", dir, buf.String())
	}
	t.Logf("%s", buf.String())
}

// luaFuncs builds a host module from Go functions.
func luaFuncs(funcs map[string]lua.LGFunction) runtime.HostModule {
	return runtime.HostModuleFunc(func(L *lua.LState) *lua.LTable {
		t := L.NewTable()
		for name, fn := range funcs {
			t.RawSetString(name, L.NewFunction(fn))
		}
		return t
	})
}

func optString(t *lua.LTable, key string) string { return lua.LVAsString(t.RawGetString(key)) }
