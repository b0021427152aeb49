package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/market/wallet"
	"github.com/vmarket/vmarket/templates"
)

// lockedBuffer collects the server log of a test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// opsApp is a full vmarket for the operator tests: its URL, an admin
// client and a provider type whose start script uses operator modules.
type opsApp struct {
	t      *testing.T
	base   string
	app    *app
	log    *lockedBuffer
	admin  *client.Client
	token  string
	typeID string
}

// probeStart is the start script of the probe type: it reports the
// operator modules it finds in the user service data, and logs a secret
// setting.
const probeStart = `local input = ...
local function opt(name)
  local ok, m = pcall(require, name)
  if ok then return m end
  return nil
end
local settings = require("settings")
local log = require("log")
log.info("start with key " .. (settings.get("api_key") or "none"))
local g, a, b = opt("greeting"), opt("pa"), opt("pb")
return {secret = "login-" .. input.order.id, data = {
  greeting = g and g.text, a = a and a.v, b = b and b.v, b_saw = b and b.saw,
}}
`

// startOpsApp runs newApp like startApp, with its log captured, and
// uploads the probe template.
func startOpsApp(t *testing.T, mutate func(*serveConfig)) *opsApp {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base, a := startAppLog(t, log, func(c *serveConfig) {
		c.luaMin, c.luaMax, c.workers = 2, 8, 8
		c.ops = operatorConfig{beforeTimeout: time.Second, afterTimeout: 300 * time.Millisecond, hookWorkers: 2, metrics: true}
		if mutate != nil {
			mutate(c)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	secret, err := operatorSecret("", a.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := opauth.NewKeyring(secret)
	tok, _ := keys.Issue("tester", market.RoleAdmin, time.Hour, time.Now())
	admin, _ := client.New(base, client.Options{Token: tok})
	o := &opsApp{t: t, base: base, app: a, log: logs, admin: admin, token: tok}

	bundles, err := templates.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := bundles[0].Template
	tmpl.Provider.Name = "probe"
	templates.Expand(tmpl, base)
	st := &tmpl.Categories[0].ServiceTypes[0]
	st.ServiceAPI.Start = market.Script{Encoded: url.QueryEscape(probeStart)}
	st.ServiceAPI.Stop, st.ServiceAPI.Refund = market.Script{}, market.Script{}
	var res market.TemplateResult
	o.do("POST", "/api/v1/template/add", tmpl, &res)
	o.typeID = res.ServiceTypes[0].ID
	return o
}

// do sends an admin request and decodes the answer; it fails the test on
// error.
func (o *opsApp) do(method, path string, body, out any) {
	o.t.Helper()
	if err := o.try(method, path, body, out); err != nil {
		o.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// try sends an admin request and decodes the answer.
func (o *opsApp) try(method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, _, err := o.admin.Do(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// buy places an order of the probe type for a new wallet (or w) and
// mock-pays it; it returns the order id, or the error of the purchase.
func (o *opsApp) buy(w *wallet.Wallet) (string, *wallet.Wallet, error) {
	if w == nil {
		var err error
		if w, err = wallet.Generate(wallet.Mainnet); err != nil {
			return "", nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	user, _ := client.New(o.base, client.Options{Wallet: w})
	anon, _ := client.New(o.base, client.Options{})
	b, _, err := user.Do(ctx, "POST", "/api/v1/order/add", nil, map[string]any{
		"serviceID": o.typeID, "serviceOptions": map[string]string{"resourceUnit": "1-CPU-2G-Mem-5G-Storage"},
		"duration": 1, "amount": 1,
	})
	if err != nil {
		return "", w, err
	}
	var ord market.OrderJSON
	if err := json.Unmarshal(b, &ord); err != nil {
		return "", w, err
	}
	_, _, err = anon.Do(ctx, "POST", "/api/v1/order/mock", nil, map[string]any{
		"orderId": ord.ID, "providerAddr": ord.Recipient, "pubKey": w.PublicKey().String(), "amt": 100000000,
	})
	return ord.ID, w, err
}

// service waits until the order is filed and returns its user service
// data.
func (o *opsApp) service(id string, w *wallet.Wallet) (map[string]any, error) {
	user, _ := client.New(o.base, client.Options{Wallet: w})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b, _, err := user.Do(ctx, "GET", "/api/v1/userService/"+id, nil, nil)
		cancel()
		if err != nil {
			return nil, err
		}
		var us struct {
			market.OrderJSON
			UserService map[string]any `json:"userService"`
		}
		if err := json.Unmarshal(b, &us); err != nil {
			return nil, err
		}
		if us.Status == market.OrderFiled {
			return us.UserService, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("order %s not filed: %s / %s %s", id, us.Status, us.ServiceStatus, us.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// order buys, pays and waits: the filed order's user service data.
func (o *opsApp) order() map[string]any {
	o.t.Helper()
	id, w, err := o.buy(nil)
	if err != nil {
		o.t.Fatal(err)
	}
	data, err := o.service(id, w)
	if err != nil {
		o.t.Fatal(err)
	}
	return data
}

func (o *opsApp) push(name, src string, activate bool) operator.ModuleVersion {
	o.t.Helper()
	var m operator.ModuleVersion
	o.do("POST", "/api/v1/admin/modules/"+name, map[string]any{"source": src, "activate": activate}, &m)
	return m
}

// TestOperatorModulesAndHooks runs the operator's story on a full app:
// upload → activate → the next order sees it; rollback; a broken upload
// rejected with its line; a before-order hook limiting orders per
// address; a looping after-hook cut at its deadline while the order
// completes; secrets kept out of logs, run records and answers; metrics.
func TestOperatorModulesAndHooks(t *testing.T) {
	o := startOpsApp(t, nil)

	o.push("greeting", `return {text = "hello v1"}`, false)
	if got := o.order()["greeting"]; got != nil {
		t.Fatalf("inactive module used: %v", got)
	}
	o.do("POST", "/api/v1/admin/modules/greeting/activate", map[string]any{"version": 1}, nil)
	if got := o.order()["greeting"]; got != "hello v1" {
		t.Fatalf("after activate: %v", got)
	}
	o.push("greeting", `return {text = "hello v2"}`, true)
	if got := o.order()["greeting"]; got != "hello v2" {
		t.Fatalf("after upload v2: %v", got)
	}
	o.do("POST", "/api/v1/admin/modules/greeting/rollback", nil, nil)
	if got := o.order()["greeting"]; got != "hello v1" {
		t.Fatalf("after rollback: %v", got)
	}

	// A broken upload is refused with its line and changes nothing.
	err := o.try("POST", "/api/v1/admin/modules/greeting", map[string]any{"source": "local t = {\n  text = \"x\"\n  more = 1\n}\nreturn t\n", "activate": true}, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Details["line"] != float64(3) {
		t.Fatalf("broken upload: %v", err)
	}
	if got := o.order()["greeting"]; got != "hello v1" {
		t.Fatalf("after broken upload: %v", got)
	}

	// A before-order hook: at most two orders per address.
	o.push("limits", `local kv = require("kv")
local M = {}
function M.before_order_create(e)
  local key = "orders:" .. e.address
  local n = tonumber(kv.get(key) or "0")
  if n >= 2 then return {reject = "limit reached: 2 orders per address"} end
  kv.set(key, tostring(n + 1))
end
return M`, true)
	var limitHook operator.Hook
	o.do("POST", "/api/v1/admin/hooks", map[string]any{"event": market.BeforeOrderCreate, "module": "limits"}, &limitHook)
	w, _ := wallet.Generate(wallet.Mainnet)
	for i := range 3 {
		_, _, err := o.buy(w)
		if i < 2 && err != nil {
			t.Fatalf("order %d: %v", i+1, err)
		}
		if i == 2 && (!errors.As(err, &ae) || ae.Status != 403 || ae.Message != "limit reached: 2 orders per address") {
			t.Fatalf("third order: %v", err)
		}
	}
	if _, _, err := o.buy(nil); err != nil {
		t.Fatalf("another address: %v", err)
	}
	o.do("DELETE", fmt.Sprintf("/api/v1/admin/hooks/%d", limitHook.ID), nil, nil)

	// A before-template check guards uploads too.
	o.push("tguard", `return {before_template_upload = function(e)
  if e.provider == "evil" then return {reject = "provider name not allowed"} end
end}`, true)
	o.do("POST", "/api/v1/admin/hooks", map[string]any{"event": market.BeforeTemplateUpload, "module": "tguard"}, nil)
	bundles, _ := templates.Bundled()
	evil := bundles[0].Template
	evil.Provider.Name = "evil"
	templates.Expand(evil, o.base)
	if err := o.try("POST", "/api/v1/template/add", evil, nil); !errors.As(err, &ae) || ae.Status != 403 || ae.Message != "provider name not allowed" {
		t.Fatalf("guarded template upload: %v", err)
	}

	// An after-hook that loops forever: cut at its deadline, the order is
	// filed all the same, the failure recorded.
	o.push("spin", `return {on_order_paid = function(e) while true do end end}`, true)
	o.do("POST", "/api/v1/admin/hooks", map[string]any{"event": market.EventOrderPaid, "module": "spin"}, nil)
	id, pw, err := o.buy(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.service(id, pw); err != nil {
		t.Fatalf("order with a looping hook: %v", err)
	}
	var runs operator.RunPage
	deadline := time.Now().Add(20 * time.Second)
	for {
		o.do("GET", "/api/v1/admin/runs?kind=hook&orderId="+id, nil, &runs)
		if len(runs.List) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(runs.List) != 1 || runs.List[0].Limit != "timeout" || runs.List[0].OK || runs.List[0].Name != "spin.on_order_paid" {
		t.Fatalf("looping hook runs: %+v", runs.List)
	}
	var scriptRuns operator.RunPage
	o.do("GET", "/api/v1/admin/runs?kind=script&orderId="+id, nil, &scriptRuns)
	if len(scriptRuns.List) != 1 || scriptRuns.List[0].Name != "start" || !scriptRuns.List[0].OK ||
		!strings.Contains(scriptRuns.List[0].Result, `"secret":"[REDACTED]"`) || !strings.HasPrefix(scriptRuns.List[0].Modules[0], "greeting@v1-") {
		t.Fatalf("script runs: %+v", scriptRuns.List)
	}

	// Secrets: set, used by the start script (which logs it), never shown.
	const apiKey = "sk-test-9f8e7d6c5b4a"
	o.do("PUT", "/api/v1/admin/settings/api_key", map[string]any{"value": apiKey, "secret": true}, nil)
	o.order()
	var all operator.RunPage
	o.do("GET", "/api/v1/admin/runs?pageSize=100", nil, &all)
	var settings json.RawMessage
	o.do("GET", "/api/v1/admin/settings", nil, &settings)
	answers, _ := json.Marshal([]any{all, settings})
	if strings.Contains(string(answers), apiKey) || strings.Contains(o.log.String(), apiKey) {
		t.Fatal("the secret leaked into an answer or the log")
	}
	if !strings.Contains(string(answers), "start with key [REDACTED]") {
		t.Fatalf("the start script's log line is not recorded redacted: %s", answers)
	}

	// Metrics expose the runs, the pool, the queue, orders and requests.
	resp, err := http.Get(o.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`vmarket_script_runs_total{kind="script",name="start"}`,
		`vmarket_script_errors_total{kind="hook",limit="timeout",name="spin.on_order_paid"}`,
		`vmarket_script_run_duration_seconds_bucket{kind="hook",name="limits.before_order_create"`,
		`vmarket_orders{status="OrderFiled"}`,
		`vmarket_job_queue_depth`,
		`vmarket_lua_states{state="in_use"}`,
		`vmarket_http_requests_total{method="POST",route="/api/v1/order/add",status="403"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestActivationUnderLoad flips two modules between versions, all at
// once, while orders run: no request fails and every start script sees
// one consistent pair of versions.
func TestActivationUnderLoad(t *testing.T) {
	o := startOpsApp(t, nil)
	const versions = 3
	for i := 1; i <= versions; i++ {
		o.push("pa", fmt.Sprintf(`return {v = %d}`, i), false)
		o.push("pb", fmt.Sprintf(`local a = require("pa") return {v = %d, saw = a.v}`, i), false)
	}
	o.do("POST", "/api/v1/admin/modules/activate", map[string]any{"versions": map[string]int{"pa": 1, "pb": 1}}, nil)

	var stop atomic.Bool
	var flips atomic.Int64
	flipErr := make(chan error, 1)
	go func() {
		defer close(flipErr)
		for i := 1; !stop.Load(); i++ {
			v := i%versions + 1
			if err := o.try("POST", "/api/v1/admin/modules/activate", map[string]any{"versions": map[string]int{"pa": v, "pb": v}}, nil); err != nil {
				flipErr <- err
				return
			}
			flips.Add(1)
		}
	}()
	const buyers, each = 6, 4
	var wg sync.WaitGroup
	errs := make(chan error, buyers*each)
	seen := make(chan int64, buyers*each)
	for range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				id, w, err := o.buy(nil)
				if err != nil {
					errs <- err
					return
				}
				data, err := o.service(id, w)
				if err != nil {
					errs <- err
					return
				}
				a, _ := data["a"].(float64)
				if a == 0 || data["b"] != data["a"] || data["b_saw"] != data["a"] {
					errs <- fmt.Errorf("order %s saw an inconsistent set: %v", id, data)
					return
				}
				seen <- int64(a)
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	if err := <-flipErr; err != nil {
		t.Fatalf("activation failed: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	close(seen)
	distinct := map[int64]bool{}
	for v := range seen {
		distinct[v] = true
	}
	t.Logf("%d activations during %d orders; versions seen: %v", flips.Load(), buyers*each, distinct)
}

// TestHooksDirServe: serve --hooks-dir loads modules and hooks, picks up
// a changed file without a restart, and keeps the old version when the
// new file is broken.
func TestHooksDirServe(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// Write then rename, as editors do, so a scan never sees half a
		// file.
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("modules/greeting.lua", `return {text = "from dir v1"}`)
	write("hooks/guard.lua", `local M = {}
function M.before_order_create(e)
  if e.amount > 100 then return {reject = "too big"} end
end
return M`)
	o := startOpsApp(t, func(c *serveConfig) { c.ops.hooksDir = dir })
	if got := o.order()["greeting"]; got != "from dir v1" {
		t.Fatalf("first load: %v", got)
	}
	var hooks operator.HookList
	o.do("GET", "/api/v1/admin/hooks", nil, &hooks)
	if len(hooks.Hooks) != 1 || hooks.Hooks[0].Origin != operator.OriginDir || hooks.Hooks[0].Event != market.BeforeOrderCreate {
		t.Fatalf("dir hooks: %+v", hooks.Hooks)
	}

	status := func() operator.DirStatus {
		var st struct{ HooksDir operator.DirStatus }
		o.do("GET", "/api/v1/admin/status", nil, &st)
		return st.HooksDir
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	write("modules/greeting.lua", `return {text = "from dir v2"}`)
	waitUntil("the changed file", func() bool {
		for _, f := range status().Files {
			if f.Module == "greeting" && f.Version == 2 && f.OK {
				return true
			}
		}
		return false
	})
	if got := o.order()["greeting"]; got != "from dir v2" {
		t.Fatalf("after change: %v", got)
	}
	write("modules/greeting.lua", "return {text = \"broken\"\n")
	waitUntil("the broken file reported", func() bool {
		for _, f := range status().Files {
			if f.Module == "greeting" && !f.OK && f.Line > 0 && f.Version == 2 {
				return true
			}
		}
		return false
	})
	if got := o.order()["greeting"]; got != "from dir v2" {
		t.Fatalf("broken file replaced the serving version: %v", got)
	}
}

// TestAdminCLI drives the admin commands against a full app.
func TestAdminCLI(t *testing.T) {
	o := startOpsApp(t, nil)
	dir := t.TempDir()
	good := filepath.Join(dir, "greeting.lua")
	bad := filepath.Join(dir, "bad.lua")
	os.WriteFile(good, []byte(`return {text = "cli"}`), 0o644)
	os.WriteFile(bad, []byte("local x = 1\nreturn {x = }\n"), 0o644)
	t.Setenv("VMARKET_SERVER", o.base)
	t.Setenv("VMARKET_TOKEN", o.token)
	tests := []struct {
		args    []string
		stdin   string
		want    string
		wantErr string
	}{
		{args: []string{"module", "push", "greeting", good}, want: "module greeting version 1"},
		{args: []string{"module", "push", "greeting", bad}, wantErr: bad + ":2:"},
		{args: []string{"module", "activate", "greeting", "1"}, want: "module greeting: version 1 active"},
		{args: []string{"module", "list"}, want: "v1 ("},
		{args: []string{"module", "show", "greeting"}, want: `return {text = "cli"}`},
		{args: []string{"module", "versions", "greeting"}, want: "activations"},
		{args: []string{"module", "dryrun", "--file", "-", "--input", `{"n": 2}`}, stdin: `local i = ... return {t = require("greeting").text, n = i.n}`, want: `"t": "cli"`},
		{args: []string{"hook", "bind", "order.paid", "greeting"}, wantErr: "does not export on_order_paid"},
		{args: []string{"hook", "list"}, want: "before_order_create"},
		{args: []string{"hook", "status"}, want: "no hooks directory"},
		{args: []string{"settings", "set", "api_key", "-", "--secret"}, stdin: "cli-secret-value\n", want: operator.SecretMask},
		{args: []string{"settings", "set", "url", "https://acme.example", "--provider", "acme"}, want: "provider acme"},
		{args: []string{"settings", "list"}, want: "api_key"},
		{args: []string{"user", "create", "sam", "--role", "support"}, want: "."},
		{args: []string{"user", "list"}, want: "sam"},
		{args: []string{"key", "list"}, want: "current (signs)"},
		{args: []string{"runs", "--kind", "script"}, want: "ID"},
		{args: []string{"module", "delete", "greeting"}, want: "module greeting deleted"},
	}
	var samToken string
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := runCLI(t, tc.stdin, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(out, tc.want) {
				t.Fatalf("out %q err %v, want %q", out, err, tc.want)
			}
			if strings.Contains(out, "cli-secret-value") {
				t.Fatalf("secret printed: %s", out)
			}
			if tc.args[0] == "user" && tc.args[1] == "create" {
				samToken = strings.TrimSpace(out)
			}
		})
	}
	// The support user reads but may not write.
	if _, err := runCLI(t, "", "module", "list", "--token", samToken); err != nil {
		t.Fatalf("support read: %v", err)
	}
	if _, err := runCLI(t, "", "key", "rotate", "--token", samToken); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("support write: %v", err)
	}
}
