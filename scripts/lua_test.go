package scripts_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/runtime/sftphost"
	"github.com/vmarket/vmarket/scripts"
	"github.com/vmarket/vmarket/scripts/internal/fakekit"
)

// control is what the Lua tests may do to the fakes through the test-only
// host module "fake": inject failures into the module's main fake (and the
// SFTP fake), count calls, and fake-specific extras.
type control struct {
	main   *fakekit.Faults
	sftp   *fakekit.Faults
	count  func(L *lua.LState, filter *lua.LTable) int
	extras map[string]lua.LGFunction
}

func (c *control) module() runtime.HostModule {
	return runtime.HostModuleFunc(func(L *lua.LState) *lua.LTable {
		t := L.NewTable()
		faults := func(prefix string, f *fakekit.Faults) {
			if f == nil {
				return
			}
			t.RawSetString(prefix+"fail_next", L.NewFunction(func(L *lua.LState) int {
				f.FailNext(L.CheckInt(1), L.OptInt(2, http.StatusInternalServerError))
				return 0
			}))
			t.RawSetString(prefix+"reject_auth_next", L.NewFunction(func(L *lua.LState) int {
				f.RejectAuthNext(L.CheckInt(1))
				return 0
			}))
			t.RawSetString(prefix+"delay", L.NewFunction(func(L *lua.LState) int {
				f.SetDelay(time.Duration(float64(L.CheckNumber(1)) * float64(time.Second)))
				return 0
			}))
		}
		faults("", c.main)
		faults("sftp_", c.sftp)
		t.RawSetString("reset", L.NewFunction(func(L *lua.LState) int {
			for _, f := range []*fakekit.Faults{c.main, c.sftp} {
				if f != nil {
					f.FailNext(0, 0)
					f.RejectAuthNext(0)
					f.SetDelay(0)
				}
			}
			return 0
		}))
		if c.count != nil {
			t.RawSetString("count", L.NewFunction(func(L *lua.LState) int {
				L.Push(lua.LNumber(c.count(L, L.OptTable(1, L.NewTable()))))
				return 1
			}))
		}
		for name, fn := range c.extras {
			t.RawSetString(name, L.NewFunction(fn))
		}
		return t
	})
}

// runLuaTests runs the *_test.lua files of one module folder against its
// fakes.
func runLuaTests(t *testing.T, dir string, ctl *control, cfg luatest.Config) {
	t.Helper()
	eng, err := runtime.NewEngine(runtime.Options{
		Modules: map[string]runtime.HostModule{
			"sftp": sftphost.New(sftphost.Options{Logger: slog.New(slog.DiscardHandler)}),
			"fake": ctl.module(),
		},
		KV:     runtime.NewMemoryKV(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	cfg.Engine = eng
	// Modules come from the embedded tree, so the copy in the binary is the
	// one tested; the test files themselves are read from the folder.
	cfg.Modules = runtime.FSResolver(scripts.FS())
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

func str(t *lua.LTable, key string) string { return lua.LVAsString(t.RawGetString(key)) }
