package luatest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRunReportsPassAndFailWithLines(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"mod/mod.lua": `return {double = function(x) return 2 * x end}`,
		"a_test.lua": `local mod = require("mod")
local M = {}
function M.test_double(t)
  t:eq(mod.double(2), 4)
  t:eq({a = {1, 2}}, {a = {1, 2}})
end
function M.test_fails(t)
  t:eq(mod.double(2), 5, "double")
end
function M.test_error(t)
  local err = t:error(function() error({code = "x"}) end)
  t:eq(err.code, "x")
  t:error(function() error("boom") end, "boom")
end
function M.test_kv_fresh(t)
  local kv = require("kv")
  t:ok(kv.get("k") == nil or kv.get("k") == "v")
  kv.set("k", "v")
end
return M
`,
		"b_test.lua": `function test_globals()
  assert_true(true)
  assert_eq(1 + 1, 2)
end
function test_assert_true_fails()
  assert_true(false, "nope")
end
`,
		"c_test.lua": "return {test_fail = function(t)\n  t:fail(\"explicit\")\nend}\n",
		"notes.lua":  `error("not a test file")`,
	})
	rep, err := Run(testCtx(t), filepath.Join(dir), Config{ModuleDirs: []string{"."}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Write(&out, false)
	if rep.Passed != 4 || rep.Failed != 3 {
		t.Fatalf("passed %d failed %d\n%s", rep.Passed, rep.Failed, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"PASS a_test.lua test_double",
		"FAIL a_test.lua test_fails",
		"a_test.lua:8: double: expected 5, got 4",
		"b_test.lua:6: nope",
		"c_test.lua:2: explicit",
		"4 passed, 3 failed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	// Tests run in definition order.
	if rep.Results[0].Name != "test_double" || rep.Results[1].Name != "test_fails" {
		t.Errorf("order %s, %s", rep.Results[0].Name, rep.Results[1].Name)
	}
	if rep.OK() {
		t.Error("OK with failures")
	}
}

// TestLoopbackFake shows the intended use from Go: start a fake, pass its
// host and URL, run the Lua tests against it.
func TestLoopbackFake(t *testing.T) {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"balance": 42, "key": "` + r.Header.Get("X-Key") + `"}`))
	}))
	defer fake.Close()
	dir := writeFiles(t, map[string]string{
		"luatest.json": `{"settings": {"api_key": "k-123456"}, "secret_keys": ["api_key"], "timeout": "2s"}`,
		"fake_test.lua": `local http, json, settings = require("http"), require("json"), require("settings")
return {
  test_balance = function(t)
    local r = http.get(settings.get("base_url") .. "/balance", {["X-Key"] = settings.get("api_key")})
    t:eq(r.status, 200)
    local body = json.decode(r.body)
    t:eq(body.balance, 42)
    t:eq(body.key, "k-123456")
  end,
  test_other_hosts_blocked = function(t)
    local err = t:error(function() http.get("http://127.0.0.2:1/") end)
    t:eq(err.code, "not_allowed")
  end,
}`,
	})
	rep, err := Run(testCtx(t), dir, Config{
		AllowedHosts: []string{strings.TrimPrefix(fake.URL, "http://")},
		Settings:     map[string]string{"base_url": fake.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Passed != 2 {
		var out bytes.Buffer
		rep.Write(&out, true)
		t.Fatal(out.String())
	}
}

func TestLoadErrorsAreFailures(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"syntax_test.lua": "return {\n",
		"empty_test.lua":  "return {}",
	})
	rep, err := Run(testCtx(t), dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || rep.Passed != 0 {
		t.Fatalf("%+v", rep)
	}
}

func TestBadConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{"luatest.json": `{"timeout": "soon"}`})
	if _, err := Run(testCtx(t), dir, Config{}); err == nil {
		t.Fatal("want a config error")
	}
}

func TestOrderByDefinition(t *testing.T) {
	src := "function M.test_b() end\nlocal x\ntest_a = function() end\nfunction test_c() end"
	got := orderByDefinition(src, []string{"test_a", "test_b", "test_c", "test_z"})
	if strings.Join(got, ",") != "test_b,test_a,test_c,test_z" {
		t.Fatal(got)
	}
}
