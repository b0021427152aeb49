package runtime

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func TestRunContract(t *testing.T) {
	e := newTestEngine(t, Options{})
	tests := []struct {
		name  string
		src   string
		input any
		want  string // fmt of the result map/value
	}{
		{"vararg input", `local in_ = ... return {a = in_.a}`, map[string]any{"a": "x"}, "map[a:x]"},
		{"global input", `return {a = input.a, same = (input == ...)}`, map[string]any{"a": 1.0}, "map[a:1 same:true]"},
		{"nil result", `return nil`, nil, "<nil>"},
		{"no return", `local x = 1`, nil, "<nil>"},
		{"array result", `return {1, "two", true}`, nil, "[1 two true]"},
		{"empty table is a map", `return {}`, nil, "map[]"},
		{"json.array is a list", `return require("json").array()`, nil, "[]"},
		{"float", `return {x = 1.5, big = 2^60}`, nil, "map[big:1.152921504606847e+18 x:1.5]"},
		{"nested", `return {a = {b = {c = "d"}}, l = {{x=1}}}`, nil, "map[a:map[b:map[c:d]] l:[map[x:1]]]"},
		{"input list keeps nulls", `return {n = #input.l, isnull = input.l[2] == require("json").null}`, map[string]any{"l": []any{1, nil, 3}}, "map[isnull:true n:3]"},
		{"number keys become strings", `return {[10] = "a", b = 1}`, nil, "map[10:a b:1]"},
		{"concat numbers", `return {s = 1 .. "-" .. 2.5}`, nil, "map[s:1-2.5]"},
		{"concat metamethod", `local mt = {__concat = function(a, b) return "C" end}
			local t = setmetatable({}, mt) return {s = "x" .. t, s2 = t .. "y"}`, nil, "map[s:C s2:C]"},
		{"multi-return truncated in concat", `local function f() return "a", "b" end return {s = "x" .. f()}`, nil, "map[s:xa]"},
		{"string methods", `return {u = ("abc"):upper(), r = ("ab"):rep(3, ","), f = string.format("%5.2f|%s|%d", 3.14159, "x", 42)}`, nil, "map[f: 3.14|x|42 r:ab,ab,ab u:ABC]"},
		{"gsub forms", `local a = ("hello world"):gsub("o", "0")
			local b = ("abc"):gsub("%w", {a = "1", b = false})
			local c, n = ("x=1, y=2"):gsub("(%w+)=(%w+)", "%2=%1")
			local d = ("abc"):gsub("b", function(m) return m:upper() end)
			return {a = a, b = b, c = c, n = n, d = d}`, nil, "map[a:hell0 w0rld b:1bc c:1=x, 2=y d:aBc n:2]"},
		{"table.concat", `return {s = table.concat({1, "b", 3}, "-")}`, nil, "map[s:1-b-3]"},
		{"pcall normal errors", `local ok, err = pcall(function() error("boom", 0) end) return {ok = ok, err = err}`, nil, "map[err:boom ok:false]"},
		{"coroutines", `local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
			return {first = co(1), second = co(10)}`, nil, "map[first:2 second:20]"},
		{"load text with env", `local f = load("return x + 1", "chunk", "t", {x = 41}) return {v = f()}`, nil, "map[v:42]"},
		{"loadstring sees globals", `y = 5 local f = loadstring("return y * 2") return {v = f()}`, nil, "map[v:10]"},
		{"math.random in range", `local ok = true for i = 1, 100 do local v = math.random(3, 5) if v < 3 or v > 5 then ok = false end end return {ok = ok}`, nil, "map[ok:true]"},
		{"os subset", `return {t = type(os.time()), d = type(os.date("%Y")), exec = type(os.execute), getenv = type(os.getenv)}`, nil, "map[d:string exec:nil getenv:nil t:number]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runSrc(t, e, tc.src, tc.input, RunOptions{})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got := fmtValue(res.Value); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	e := newTestEngine(t, Options{})
	tests := []struct {
		name     string
		src      string
		wantLine int
		wantMsg  string
		wantIs   error
	}{
		{"runtime error line", "local a = 1\nlocal b = nil\nreturn b.x", 3, "attempt to index", nil},
		{"error with table", `error({code = "E1", message = "bad"})`, 0, "code=E1", nil},
		{"returns string", `return "x"`, 0, "want a table or nil", ErrResult},
		{"returns function", `return {f = function() end}`, 0, "cannot convert a Lua function", ErrResult},
		{"cycle", `local t = {} t.t = t return t`, 0, "table cycle", ErrResult},
		{"bad concat", "local t = {}\nreturn {s = 'a' .. t}", 2, "attempt to concatenate a table value", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runSrc(t, e, tc.src, nil, RunOptions{})
			if err == nil {
				t.Fatal("want an error")
			}
			if res == nil || res.Record.Error == nil {
				t.Fatal("the record must carry the error")
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not contain %q", err, tc.wantMsg)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Fatalf("error %v is not %v", err, tc.wantIs)
			}
			if tc.wantLine > 0 {
				var se *ScriptError
				if !errors.As(err, &se) {
					t.Fatalf("error %T is not a *ScriptError", err)
				}
				if se.Line != tc.wantLine || se.Chunk != "test" {
					t.Fatalf("position %s:%d, want test:%d", se.Chunk, se.Line, tc.wantLine)
				}
				if se.Traceback == "" {
					t.Fatal("want a traceback")
				}
			}
		})
	}
}

func TestCompileErrorHasLine(t *testing.T) {
	e := newTestEngine(t, Options{})
	_, err := runSrc(t, e, "local x = 1\nlocal = 2", nil, RunOptions{})
	var se *ScriptError
	if !errors.As(err, &se) || se.Line != 2 {
		t.Fatalf("got %v, want a ScriptError at line 2", err)
	}
}

func TestCall(t *testing.T) {
	e := newTestEngine(t, Options{})
	mod := Script{Name: "hooks", Source: `
local M = {}
function M.on_paid(ev) return {order = ev.order, seen = true} end
function M.flag(ev) return ev.n > 1 end
return M`}
	res, err := e.Call(testCtx(t), mod, "on_paid", map[string]any{"order": "o1"}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtValue(res.Value); got != "map[order:o1 seen:true]" {
		t.Fatalf("got %s", got)
	}
	res, err = e.Call(testCtx(t), mod, "flag", map[string]any{"n": 2}, RunOptions{})
	if err != nil || res.Value != true {
		t.Fatalf("flag: %v %v", res.Value, err)
	}
	if _, err := e.Call(testCtx(t), mod, "on_refund", nil, RunOptions{}); !errors.Is(err, ErrNoFunction) {
		t.Fatalf("missing function: got %v, want ErrNoFunction", err)
	}
}

// TestIsolationBetweenRuns runs on a single state, so every run reuses the
// previous run's Lua state, and checks nothing leaks.
func TestIsolationBetweenRuns(t *testing.T) {
	mods := MapResolver(map[string]string{"counter": `local M = {n = 0} function M.inc() M.n = M.n + 1 return M.n end return M`})
	e := newTestEngine(t, Options{MinStates: 1, MaxStates: 1, Resolver: mods})
	polluters := []string{
		`leaked = "yes"`,
		`_G.leaked2 = "yes"`,
		`rawset(_G, "leaked3", "yes")`,
		`pcall(function() string.upper = function() return "pwned" end end)`,
		`pcall(function() getmetatable("").__index = {upper = function() return "pwned" end} end)`,
		`pcall(rawset, string, "upper", function() return "pwned" end)`,
		`pcall(table.insert, string, "pwned")`,
		`pcall(setmetatable, _G, {__index = function() return "pwned" end})`,
		`pcall(function() math.floor = nil end)`,
		`require("counter").inc()`,
		`package.loaded.json = {encode = function() return "pwned" end}`,
		`pcall(function() require("json").encode = nil end)`,
		`math.randomseed(42)`,
		`input.x = "changed"`,
	}
	for _, src := range polluters {
		if _, err := runSrc(t, e, src, map[string]any{"x": "orig"}, RunOptions{}); err != nil {
			t.Fatalf("polluter %q: %v", src, err)
		}
	}
	check := `
local json = require("json")
return {
	leaked = tostring(leaked) .. tostring(leaked2) .. tostring(leaked3),
	upper = ("a"):upper() .. string.upper("b"),
	floor = math.floor(1.5),
	counter = require("counter").inc(),
	json = json.encode({1}),
	meta = getmetatable("") == false,
	gmeta = getmetatable(_G) == false,
	x = input.x,
}`
	res, err := runSrc(t, e, check, map[string]any{"x": "orig"}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "map[counter:1 floor:1 gmeta:true json:[1] leaked:nilnilnil meta:true upper:AB x:orig]"
	if got := fmtValue(res.Value); got != want {
		t.Fatalf("state leaked between runs:\n got %s\nwant %s", got, want)
	}
	if s := e.Stats(); s.StatesCreated != 1 {
		t.Fatalf("want all runs on one state, created %d", s.StatesCreated)
	}
}

func TestRandomSeedPerRun(t *testing.T) {
	e := newTestEngine(t, Options{MaxStates: 1})
	src := `return {v = math.random(1, 1000000000)}`
	a, _ := runSrc(t, e, src, nil, RunOptions{Seed: 7})
	b, _ := runSrc(t, e, src, nil, RunOptions{Seed: 7})
	if fmtValue(a.Value) != fmtValue(b.Value) {
		t.Fatal("same seed, different values")
	}
}

func TestCacheStats(t *testing.T) {
	e := newTestEngine(t, Options{})
	s := Script{Name: "c", Source: `return {}`}
	for i := 0; i < 3; i++ {
		res, err := e.Run(testCtx(t), s, nil, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Record.CacheHit != (i > 0) {
			t.Fatalf("run %d: CacheHit=%v", i, res.Record.CacheHit)
		}
	}
	st := e.Stats().Cache
	if st.Hits != 2 || st.Misses != 1 || st.Compiles != 1 || st.Entries != 1 {
		t.Fatalf("cache stats %+v", st)
	}
}

func TestCacheCompilesOncePerScriptConcurrently(t *testing.T) {
	e := newTestEngine(t, Options{MaxStates: 4})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Run(testCtx(t), Script{Name: "p", Source: `return {x = 1}`}, nil, RunOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c := e.Stats().Cache.Compiles; c != 1 {
		t.Fatalf("compiled %d times", c)
	}
}

func TestCacheEviction(t *testing.T) {
	c := newProtoCache(2)
	for _, src := range []string{"return 1", "return 2", "return 3"} {
		if _, _, err := c.get("x", src); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.snapshot(); s.Entries != 2 || s.Evictions != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPoolBusy(t *testing.T) {
	e := newTestEngine(t, Options{MinStates: 1, MaxStates: 1, PoolWait: 20 * time.Millisecond})
	started := make(chan struct{})
	release := make(chan struct{})
	e.modules["hold"] = HostModuleFunc(func(L *lua.LState) *lua.LTable {
		t := L.NewTable()
		t.RawSetString("wait", L.NewFunction(func(L *lua.LState) int {
			close(started)
			<-release
			return 0
		}))
		return t
	})
	done := make(chan error, 1)
	go func() {
		_, err := runSrc(t, e, `require("hold").wait()`, nil, RunOptions{})
		done <- err
	}()
	<-started
	_, err := runSrc(t, e, `return {}`, nil, RunOptions{})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := runSrc(t, e, `return {}`, nil, RunOptions{}); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if e.Stats().BusyRejections != 1 {
		t.Fatal("busy rejection not counted")
	}
}

func TestCallerCancel(t *testing.T) {
	e := newTestEngine(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Run(ctx, Script{Name: "c", Source: `while true do end`}, nil, RunOptions{})
	if err == nil {
		t.Fatal("want an error")
	}
}
