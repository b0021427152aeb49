package sftphost_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime/sftphost"
)

// testEnv stands in for the runtime's run in these tests.
type testEnv struct {
	ctx   context.Context
	allow string
}

func (e testEnv) Context() context.Context { return e.ctx }

func (e testEnv) HostAllowed(host string, port int) bool {
	return e.allow != "" && e.allow == fmt.Sprintf("%s:%d", host, port)
}

func (e testEnv) Reserve(*lua.LState, int64) {}

func (e testEnv) RaiseError(L *lua.LState, code, message string) {
	t := L.NewTable()
	t.RawSetString("code", lua.LString(code))
	t.RawSetString("message", lua.LString(message))
	mt := L.NewTable()
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("sftp: " + code + ": " + message))
		return 1
	}))
	L.SetMetatable(t, mt)
	L.Error(t, 1)
}

func runLua(t *testing.T, m *sftphost.Module, env testEnv, src string) error {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	L.SetContext(env.ctx)
	L.SetGlobal("sftp", m.Table(L, func(*lua.LState) sftphost.Env { return env }))
	return L.DoString(src)
}

func TestLua(t *testing.T) {
	f := setup(t)
	pin := f.srv.HostKeyLine()
	connect := fmt.Sprintf(`sftp.connect{host=%q, port=%d, user="vcc", password="pw-秘密", host_key=%q}`, f.srv.Host(), f.srv.Port(), pin)
	tests := []struct {
		name    string
		allowed []string
		envHost string
		src     string
		wantErr string
	}{
		{"list and get", []string{"127.0.0.1"}, "", `
			local c = ` + connect + `
			local e = c:list("/reconcile")
			assert(#e == 2 and e[1].name == "20250314.csv" and e[1].size == 25 and e[1].is_dir == false and e[1].mode == "644", "entries")
			assert(type(e[1].mtime) == "number")
			local d = c:get("/reconcile/20250314.csv")
			assert(d == "orderNo,amount\nA-1,10.00\n", d)
			assert(tostring(c):find("sftp.conn", 1, true))
			c:close()
			c:close()`, ""},
		{"run allowlist", nil, fmt.Sprintf("%s:%d", f.srv.Host(), f.srv.Port()), `local c = ` + connect + ` c:close()`, ""},
		{"error table", []string{"127.0.0.1"}, "", `
			local c = ` + connect + `
			local ok, err = pcall(c.get, c, "/nope")
			assert(not ok and type(err) == "table" and err.code == "not_found", tostring(err))
			assert(tostring(err):find("^sftp: not_found: "))
			ok, err = pcall(c.get, c, "/reconcile/20250315.csv", 10)
			assert(err.code == "too_large", tostring(err))`, ""},
		{"not allowed", []string{"example.com"}, "", connect, "sftp: not_allowed"},
		{"unpinned", []string{"127.0.0.1"}, "", fmt.Sprintf(`sftp.connect{host=%q, port=%d, user="vcc", password="x"}`, f.srv.Host(), f.srv.Port()), "sftp: invalid_argument"},
		{"bad option type", []string{"127.0.0.1"}, "", `sftp.connect{host={}, user="vcc"}`, "host must be a string"},
		{"method on wrong value", []string{"127.0.0.1"}, "", `local c = ` + connect + ` c.list({}, "/")`, "userdata expected"},
		{"metatable hidden", []string{"127.0.0.1"}, "", `local c = ` + connect + ` assert(getmetatable(c) == false)`, ""},
		{"connection cap", []string{"127.0.0.1"}, "", `local a = ` + connect + ` local b = ` + connect + ` local c = ` + connect, "too many open sftp connections"},
		{"cap freed by close", []string{"127.0.0.1"}, "", `for i = 1, 5 do local a = ` + connect + ` a:close() end`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := sftphost.New(sftphost.Options{AllowedHosts: tc.allowed, MaxConns: 2})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			src := tc.src
			if tc.wantErr != "" {
				src = fmt.Sprintf(`local ok, err = pcall(function() %s end)
					assert(not ok, "no error")
					local s = tostring(err)
					if not s:find(%q, 1, true) then error("got " .. s) end`, tc.src, tc.wantErr)
			}
			if err := runLua(t, m, testEnv{ctx: ctx, allow: tc.envHost}, src); err != nil {
				t.Fatal(err)
			}
		})
	}
}
