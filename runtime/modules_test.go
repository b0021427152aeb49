package runtime

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	lua "github.com/yuin/gopher-lua"
)

// TestHostModules runs Lua assertions against each host module; a case
// passes when its chunk returns without error.
func TestHostModules(t *testing.T) {
	kv := NewMemoryKV()
	e := newTestEngine(t, Options{KV: kv})
	opts := RunOptions{
		KVScope:    "p1",
		Settings:   map[string]string{"api_key": "s3cr3t-value", "region": "hk"},
		SecretKeys: []string{"api_key"},
	}
	tests := []struct{ name, src string }{
		{"json round trip", `
			local json = require("json")
			assert(json.encode({b = 1, a = {true, false}, c = "x\n\"y\""}) == '{"a":[true,false],"b":1,"c":"x\\n\\"y\\""}')
			assert(json.encode({}) == "{}")
			assert(json.encode(json.array()) == "[]")
			assert(json.encode(json.null) == "null")
			assert(json.encode(1.5) == "1.5" and json.encode(3) == "3")
			local v = json.decode('{"a":null,"b":[],"c":[1,2,3],"d":{"e":"f"},"n":12345678901}')
			assert(v.a == json.null)
			assert(json.is_array(v.b) and #v.b == 0 and json.encode(v.b) == "[]")
			assert(#v.c == 3 and v.d.e == "f" and v.n == 12345678901)
			local ok, err = pcall(json.decode, "{bad")
			assert(not ok and err.code == "decode", tostring(err))
			ok, err = pcall(json.encode, {f = print})
			assert(not ok and err.code == "invalid_argument")
			local deep = {} local cur = deep for i = 1, 100 do cur.x = {} cur = cur.x end
			ok, err = pcall(json.encode, deep)
			assert(not ok and err.code == "invalid_argument")
			ok, err = pcall(json.encode, 0/0)
			assert(not ok)
			assert(tostring(err):find("^json: invalid_argument: "))`},
		{"crypto", `
			local c = require("crypto")
			assert(c.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
			assert(c.hmac_sha256("key", "The quick brown fox jumps over the lazy dog") == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
			assert(c.base64_encode("hi?") == "aGk/" and c.base64_encode("hi?", "url") == "aGk_")
			assert(c.base64_decode("aGk=") == "hi" and c.base64_decode("aGk") == "hi" and c.base64_decode("aGk_", "url") == "hi?")
			assert(c.hex_encode("\1\255") == "01ff" and c.hex_decode("01FF") == "\1\255")
			local ok, err = pcall(c.hex_decode, "zz")
			assert(not ok and err.code == "decode")
			assert(#c.random_bytes(16) == 16 and c.random_bytes(8) ~= c.random_bytes(8))
			assert(c.uuid():match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"))
			ok, err = pcall(c.random_bytes, 5000)
			assert(not ok and err.code == "invalid_argument")`},
		{"url", `
			local url = require("url")
			assert(url.escape("a b&c") == "a+b%26c" and url.unescape("a+b%26c") == "a b&c")
			assert(url.path_escape("a b/c") == "a%20b%2Fc")
			assert(url.build_query({b = {1, 2}, a = "x y", c = true}) == "a=x+y&b=1&b=2&c=true")
			local q = url.parse_query("a=1&a=2&b=x+y")
			assert(q.a[1] == "1" and q.a[2] == "2" and q.b == "x y")
			local ok, err = pcall(url.unescape, "%zz")
			assert(not ok and err.code == "decode")`},
		{"time", `
			local time = require("time")
			assert(time.format(0, "iso") == "1970-01-01T00:00:00Z")
			assert(time.format(0, "yyyyMMddHHmmss", "Asia/Hong_Kong") == "19700101080000")
			assert(time.format(86400, "yyyyMMdd", "+08:00") == "19700102")
			assert(time.parse("20240501", "yyyyMMdd", "+08:00") == 1714492800)
			assert(time.parse("2024-05-01T00:00:00+08:00", "iso") == 1714492800)
			assert(time.parse("19700101080000", "yyyyMMddHHmmss", "Asia/Hong_Kong") == 0)
			assert(time.parse("2024-05-01T00:00:00.5Z", "iso") == 1714521600.5)
			assert(math.abs(time.now() - os.time()) < 5 and time.now_ms() > time.now())
			local ok, err = pcall(time.format, 0, "dd/MM")
			assert(not ok and err.code == "invalid_argument")
			ok, err = pcall(time.parse, "nope", "iso")
			assert(not ok and err.code == "decode")
			ok, err = pcall(time.format, 0, "iso", "Mars/Base")
			assert(not ok and err.code == "invalid_argument")`},
		{"kv scoped", `
			local kv = require("kv")
			assert(kv.get("k") == nil)
			kv.set("k", "v") kv.set("k2", 5) kv.set("other", "o")
			assert(kv.get("k") == "v" and kv.get("k2") == "5")
			local l = kv.list("k")
			assert(#l == 2 and l[1].key == "k" and l[2].value == "5")
			kv.delete("k")
			assert(kv.get("k") == nil)
			local ok, err = pcall(kv.set, string.rep("x", 300), "v")
			assert(not ok and err.code == "invalid_argument")
			ok, err = pcall(kv.set, "big", string.rep("x", 70000))
			assert(not ok and err.code == "too_large")`},
		{"settings", `
			local s = require("settings")
			assert(s.get("region") == "hk" and s.get("api_key") == "s3cr3t-value" and s.get("nope") == nil)`},
		{"log", `
			local log = require("log")
			log.info("hello", {n = 1, list = {1, 2}})
			log.warn("key is " .. require("settings").get("api_key"))
			print("printed", 1, nil)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runSrc(t, e, tc.src, nil, opts); err != nil {
				t.Fatal(err)
			}
		})
	}
	if v, ok, _ := kv.Get(context.Background(), "p1", "k2"); !ok || v != "5" {
		t.Fatalf("kv not stored in scope p1: %q %v", v, ok)
	}
	if _, ok, _ := kv.Get(context.Background(), "p2", "k2"); ok {
		t.Fatal("kv leaked across scopes")
	}
}

func TestKVNotConfigured(t *testing.T) {
	e := newTestEngine(t, Options{})
	_, err := runSrc(t, e, `require("kv").get("x")`, nil, RunOptions{KVScope: "p"})
	if err == nil || !strings.Contains(err.Error(), "not_allowed") {
		t.Fatalf("got %v", err)
	}
}

func TestLogRecordAndRedaction(t *testing.T) {
	var sink strings.Builder
	logger := slog.New(slog.NewTextHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newTestEngine(t, Options{Logger: logger, Limits: Limits{LogLines: 3}})
	opts := RunOptions{Settings: map[string]string{"api_key": "s3cr3t-value"}, SecretKeys: []string{"api_key"}}
	res, err := runSrc(t, e, `
		local key = require("settings").get("api_key")
		local log = require("log")
		log.debug("d", {k = key})
		log.info("using " .. key)
		log.error("e")
		log.warn("dropped")
		error("failed with " .. key)`, nil, opts)
	if err == nil {
		t.Fatal("want the error")
	}
	rec := res.Record
	if len(rec.Logs) != 3 || rec.LogsDropped != 1 {
		t.Fatalf("logs %d dropped %d", len(rec.Logs), rec.LogsDropped)
	}
	if rec.Logs[0].Level != "debug" || rec.Logs[1].Message != "using [REDACTED]" || rec.Logs[0].Fields["k"] != "[REDACTED]" {
		t.Fatalf("logs %+v", rec.Logs)
	}
	for _, s := range []string{err.Error(), rec.ErrorText, sink.String()} {
		if strings.Contains(s, "s3cr3t-value") {
			t.Fatalf("secret leaked in %q", s)
		}
	}
	if !strings.Contains(sink.String(), "using [REDACTED]") {
		t.Fatalf("log not forwarded: %s", sink.String())
	}
}

func TestHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Ct", r.Header.Get("Content-Type"))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(201)
		w.Write(append([]byte(r.Header.Get("Authorization")+"|"), body...))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 2048))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	e := newTestEngine(t, Options{Limits: Limits{HTTPBodyBytes: 1024, HTTPRequests: 10}})
	opts := RunOptions{AllowedHosts: []string{host}, RootCAs: caPEM}
	base := "local http = require('http') local base = '" + srv.URL + "'\n"
	tests := []struct{ name, src string }{
		{"request", `
			local r = http.request{method = "PUT", url = base .. "/echo", headers = {Authorization = "Bearer t"}, body = "payload", timeout = 5}
			assert(r.status == 201, r.status)
			assert(r.body == "Bearer t|payload", r.body)
			assert(r.headers["x-method"] == "PUT" and r.headers["x-multi"] == "a, b")`},
		{"post json table", `
			local r = http.post(base .. "/echo", {a = 1})
			assert(r.body == '|{"a":1}' and r.headers["x-ct"] == "application/json", r.body)`},
		{"get and allowed redirect", `
			local r = http.get(base .. "/redirect", {Authorization = "x"})
			assert(r.status == 201 and r.headers["x-method"] == "GET")`},
		{"body cap", `
			local ok, err = pcall(http.get, base .. "/big")
			assert(not ok and err.code == "too_large", tostring(err))`},
		{"per-request timeout", `
			local ok, err = pcall(http.request, {url = base .. "/slow", timeout = 0.05})
			assert(not ok and err.code == "timeout", tostring(err))`},
		{"wrong port not allowed", `
			local ok, err = pcall(http.get, "https://127.0.0.1:1/")
			assert(not ok and err.code == "not_allowed", tostring(err))`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := runSrc(t, e, base+tc.src, nil, opts); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("unknown CA fails", func(t *testing.T) {
		_, err := runSrc(t, e, base+`http.get(base .. "/echo")`, nil, RunOptions{AllowedHosts: []string{host}})
		if err == nil || !strings.Contains(err.Error(), "transport") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("request cap", func(t *testing.T) {
		_, err := runSrc(t, e, base+`for i = 1, 20 do pcall(http.get, base .. "/echo") end`, nil, opts)
		if !errors.Is(err, &LimitError{Limit: LimitHTTPRequests}) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAllowList(t *testing.T) {
	a := newAllowList([]string{"api.example.com", "127.0.0.1:8443", "[::1]:9000", " Upper.Example.com "})
	tests := []struct {
		host, port string
		want       bool
	}{
		{"api.example.com", "443", true},
		{"API.example.com", "8080", true},
		{"127.0.0.1", "8443", true},
		{"127.0.0.1", "8444", false},
		{"::1", "9000", true},
		{"upper.example.com", "1", true},
		{"evil.com", "443", false},
		{"api.example.com.evil.com", "443", false},
	}
	for _, tc := range tests {
		if got := a.allows(tc.host, tc.port); got != tc.want {
			t.Errorf("allows(%s, %s) = %v", tc.host, tc.port, got)
		}
	}
}

func TestRequireModules(t *testing.T) {
	fsys := fstest.MapFS{
		"vcc/vcc.lua":   {Data: []byte(`local util = require("vcc.util") return {name = "vcc", twice = util.twice}`)},
		"vcc/util.lua":  {Data: []byte(`return {twice = function(x) return 2 * x end}`)},
		"plain.lua":     {Data: []byte(`return {v = "plain"}`)},
		"broken.lua":    {Data: []byte(`return {`)},
		"loop/loop.lua": {Data: []byte(`return require("loop")`)},
	}
	override := MapResolver(map[string]string{"plain": `return {v = "operator"}`})
	e := newTestEngine(t, Options{Resolver: Chain(override, FSResolver(fsys))})
	res, err := runSrc(t, e, `
		local vcc = require("vcc")
		assert(require("vcc") == vcc)
		return {name = vcc.name, four = vcc.twice(2), plain = require("plain").v}`, nil, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtValue(res.Value); got != "map[four:4 name:vcc plain:operator]" {
		t.Fatalf("got %s", got)
	}
	if len(res.Record.Modules) != 3 {
		t.Fatalf("modules %v", res.Record.Modules)
	}
	for src, want := range map[string]string{
		`require("missing")`: "module 'missing' not found",
		`require("broken")`:  "module 'broken': broken: syntax error",
		`require("loop")`:    "loop or previous error",
		`require("a/../b")`:  "not found",
	} {
		if _, err := runSrc(t, e, src, nil, RunOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", src, err, want)
		}
	}
}

func TestExtraHostModule(t *testing.T) {
	e := newTestEngine(t, Options{Modules: map[string]HostModule{
		"greet": HostModuleFunc(func(L *lua.LState) *lua.LTable {
			t := L.NewTable()
			t.RawSetString("hello", L.NewFunction(func(L *lua.LState) int {
				run := CurrentRun(L)
				if run.Value("greeting") == nil {
					run.RaiseError(L, "greet", "not_allowed", "no greeting configured")
				}
				L.Push(lua.LString(run.Value("greeting").(string) + " " + L.CheckString(1)))
				return 1
			}))
			return t
		}),
	}})
	res, err := runSrc(t, e, `return {v = require("greet").hello("bob")}`, nil, RunOptions{Values: map[string]any{"greeting": "hi"}})
	if err != nil || fmtValue(res.Value) != "map[v:hi bob]" {
		t.Fatalf("%v %v", res, err)
	}
	_, err = runSrc(t, e, `require("greet").hello("bob")`, nil, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "greet: not_allowed: no greeting configured") {
		t.Fatalf("got %v", err)
	}
}

func TestRunHostAllowed(t *testing.T) {
	var got []bool
	e := newTestEngine(t, Options{Modules: map[string]HostModule{
		"probe": HostModuleFunc(func(L *lua.LState) *lua.LTable {
			t := L.NewTable()
			t.RawSetString("check", L.NewFunction(func(L *lua.LState) int {
				run := CurrentRun(L)
				got = append(got, run.HostAllowed("sftp.example.com", 22), run.HostAllowed("sftp.example.com", 2222), run.HostAllowed("other", 22))
				return 0
			}))
			return t
		}),
	}})
	if _, err := runSrc(t, e, `require("probe").check()`, nil, RunOptions{AllowedHosts: []string{"sftp.example.com:22"}}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0] || got[1] || got[2] {
		t.Fatalf("got %v", got)
	}
}
