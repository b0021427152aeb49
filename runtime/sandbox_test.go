package runtime

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSandboxEscapes tries ways out of the sandbox; each must fail safely:
// a script error, a typed limit error, or a harmless result.
func TestSandboxEscapes(t *testing.T) {
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("internal secret"))
	}))
	defer secret.Close()
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, secret.URL+"/x", http.StatusFound)
	}))
	defer allowed.Close()
	allowedHost := strings.TrimPrefix(allowed.URL, "http://")

	e := newTestEngine(t, Options{
		MaxStates: 2,
		Limits: Limits{
			MemoryBytes: 32 << 20,
		},
	})
	type want struct {
		limit string // a LimitError of this limit
		msg   string // or an error containing this
		value string // or success with this result
	}
	tests := []struct {
		name string
		src  string
		want want
	}{
		{"os.execute", `return {r = os.execute("id")}`, want{msg: "attempt to call a non-function object"}},
		{"os.exit", `os.exit(1)`, want{msg: "attempt to call a non-function object"}},
		{"os.getenv", `return {v = os.getenv("HOME")}`, want{msg: "attempt to call a non-function object"}},
		{"io.open", `return {f = io.open("/etc/passwd")}`, want{msg: "attempt to index a non-table object(nil)"}},
		{"require os", `return require("os").execute("id")`, want{msg: "attempt to call a non-function object"}},
		{"require io", `return require("io")`, want{msg: "module 'io' not found"}},
		{"require file path", `return require("../../etc/passwd")`, want{msg: "not found"}},
		{"dofile", `dofile("/etc/passwd")`, want{msg: "attempt to call a non-function object"}},
		{"loadfile", `loadfile("/etc/passwd")`, want{msg: "attempt to call a non-function object"}},
		{"string.dump and load", `local f = string.dump(function() end) return {f = load(f)}`, want{msg: "attempt to call a non-function object"}},
		{"binary chunk", `local f, err = load("\27Lua\81\0") return {f = tostring(f), err = err}`, want{value: "map[err:attempt to load a binary chunk (binary chunks are not allowed) f:nil]"}},
		{"binary mode", `local f, err = load("return 1", "x", "b") return {f = tostring(f)}`, want{value: "map[f:nil]"}},
		{"collectgarbage", `collectgarbage()`, want{msg: "attempt to call a non-function object"}},
		{"debug library", `return debug.getregistry()`, want{msg: "attempt to index a non-table object(nil)"}},
		{"require debug", `return require("debug")`, want{msg: "module 'debug' not found"}},
		{"getfenv", `return getfenv(0)`, want{msg: "attempt to call a non-function object"}},
		{"setfenv", `setfenv(1, {})`, want{msg: "attempt to call a non-function object"}},
		{"package.loadlib", `return package.loadlib("libc.so.6", "system")`, want{msg: "attempt to call a non-function object"}},
		{"newproxy", `return newproxy(true)`, want{msg: "attempt to call a non-function object"}},
		{"string metatable poisoning", `getmetatable("").__index.upper = nil`, want{msg: "non-table object(boolean)"}},
		{"string lib write", `string.upper = nil`, want{msg: "read-only table 'string'"}},
		{"rawset on lib", `rawset(string, "x", 1)`, want{msg: "read-only table"}},
		{"setmetatable on lib", `setmetatable(math, {})`, want{msg: "protected metatable"}},
		{"_G metatable", `setmetatable(_G, {})`, want{msg: "protected metatable"}},
		{"module table write", `require("json").encode = print`, want{msg: "read-only table 'json'"}},
		{"env games see no stdlib globals", `local n = 0 for k in pairs(_G) do n = n + 1 end return {n = n, g = _G == _G._G}`, want{value: "map[g:true n:0]"}},
		{"load with _G escapes nothing", `local f = load("return os.execute") return {t = type(f())}`, want{value: "map[t:nil]"}},
		{"coroutine sees sandbox", `local co = coroutine.create(function() return io end) local ok, v = coroutine.resume(co) return {ok = ok, io = type(v)}`, want{value: "map[io:nil ok:true]"}},
		{"error object is a table", `error({code = "x", message = "y"})`, want{msg: "code=x"}},
		{"error object with __tostring", `error(setmetatable({}, {__tostring = function() while true do end end}))`, want{msg: "error object is a table"}},
		{"infinite loop", `while true do end`, want{limit: LimitTimeout}},
		{"pcall swallowed timeout", `while true do pcall(function() while true do end end) end`, want{limit: LimitTimeout}},
		{"xpcall swallowed timeout", `local n = 0 while true do xpcall(function() while true do end end, function(e) n = n + 1 return e end) end`, want{limit: LimitTimeout}},
		{"coroutine swallowed timeout", `while true do local co = coroutine.create(function() while true do end end) coroutine.resume(co) end`, want{limit: LimitTimeout}},
		{"loop inside coroutine", `coroutine.wrap(function() while true do end end)()`, want{limit: LimitTimeout}},
		{"deep recursion", `local function f(n) return 1 + f(n + 1) end return {v = f(1)}`, want{limit: LimitCallDepth}},
		{"pcall swallowed recursion", `local function f() return 1 + f() end for i = 1, 100 do pcall(f) end return {}`, want{limit: LimitCallDepth}},
		{"metamethod recursion", `local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end return {v = t.x}`, want{limit: LimitCallDepth}},
		{"string.rep bomb", `local s = string.rep("x", 1e9) return {n = #s}`, want{limit: LimitMemory}},
		{"concat doubling", `local s = "x" while true do s = s .. s end`, want{limit: LimitMemory}},
		{"concat bomb in pcall", `local s = "x" for i = 1, 40 do pcall(function() s = s .. s end) end return {n = #s}`, want{limit: LimitMemory}},
		{"format width bomb", `return {s = string.format("%99999999d", 1)}`, want{msg: "width or precision too long"}},
		{"gsub bomb", `local s = string.rep("x", 4096) local r = s:gsub("x", string.rep("y", 16384)) return {n = #r}`, want{limit: LimitMemory}},
		{"table.concat bomb", `local t = {} local s = string.rep("x", 1048576) for i = 1, 64 do t[i] = s end return {n = #table.concat(t)}`, want{limit: LimitMemory}},
		{"table growth bomb", `local t = {} local i = 0 while true do i = i + 1 t[i] = {i, i, i} end`, want{limit: LimitMemory}},
		{"sparse index bomb", `local ts = {} for i = 1, 1000 do local t = {} t[1048575] = 1 ts[i] = t end`, want{limit: LimitMemory}},
		{"unpack bomb", `local t = {} for i = 1, 100000 do t[i] = i end return {unpack(t)}`, want{limit: LimitStack}},
		{"coroutine bomb", `local cs = {} for i = 1, 100000 do cs[i] = coroutine.create(function() end) end`, want{limit: LimitCoroutines}},
		{"package.loaded tampering", `package.loaded.json = "fake" return {v = require("json")}`, want{value: "map[v:fake]"}},
		{"http not allowed", `return require("http").get("` + secret.URL + `")`, want{msg: "not_allowed"}},
		{"http redirect to not allowed", `return require("http").get("http://` + allowedHost + `/")`, want{msg: "not_allowed"}},
		{"http file scheme", `return require("http").get("file:///etc/passwd")`, want{msg: "not_allowed"}},
		{"settings are per run", `return {v = require("settings").get("api_key")}`, want{value: "map[]"}},
	}
	if len(tests) < 25 {
		t.Fatal("the escape suite must have at least 25 cases")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Only the timeout cases wait for the deadline; the others get
			// a generous one so a slow machine cannot turn them into timeouts.
			timeout := 20 * time.Second
			if tc.want.limit == LimitTimeout {
				timeout = 300 * time.Millisecond
			}
			res, err := runSrc(t, e, tc.src, nil, RunOptions{AllowedHosts: []string{allowedHost}, Timeout: timeout})
			switch {
			case tc.want.limit != "":
				var le *LimitError
				if !errors.As(err, &le) || le.Limit != tc.want.limit {
					t.Fatalf("got %v, want limit %s", err, tc.want.limit)
				}
				if !errors.Is(err, ErrLimit) || res.Record.Limit != tc.want.limit {
					t.Fatalf("limit not reported: %v / record %q", err, res.Record.Limit)
				}
			case tc.want.msg != "":
				if err == nil || !strings.Contains(err.Error(), tc.want.msg) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want.msg)
				}
			default:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				if got := fmtValue(res.Value); got != tc.want.value {
					t.Fatalf("got %s, want %s", got, tc.want.value)
				}
			}
		})
	}
	// The process and the pool are unharmed: a plain run still works.
	res, err := runSrc(t, e, `return {ok = true}`, nil, RunOptions{})
	if err != nil || fmtValue(res.Value) != "map[ok:true]" {
		t.Fatalf("after the suite: %v %v", res, err)
	}
}
