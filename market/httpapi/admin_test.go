package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/httpapi"
	"github.com/vmarket/vmarket/market/metrics"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// newAdminServer is the test server with the operator service and
// metrics mounted.
func newAdminServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "operator.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := runtime.NewEngine(runtime.Options{MinStates: 1, MaxStates: 4, KV: db.KV()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := opauth.NewKeyring([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := operator.New(ctx, operator.Config{Store: db.Operator(), Engine: engine, Keys: keys,
		SealKey: bytes.Repeat([]byte{1}, operator.SealKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Sources{Engine: engine.Stats, OrderCounts: db.OrderStatusCounts, RecordsDropped: svc.RecordsDropped})
	t.Cleanup(func() {
		svc.Close(context.Background())
		engine.Close()
		db.Close()
	})
	return newTestServer(t, func(c *httpapi.Config) {
		c.Operators, c.Operator, c.Metrics, c.MetricsHandler = svc, svc, m, m.Handler()
	})
}

func TestAdminAuth(t *testing.T) {
	s := newAdminServer(t)
	s.do("POST", "/api/v1/admin/modules/m", s.admin, map[string]any{"source": "return {f = function() end}", "activate": true})
	reads := []string{"/api/v1/admin/status", "/api/v1/admin/modules", "/api/v1/admin/modules/m", "/api/v1/admin/modules/m/versions/1",
		"/api/v1/admin/hooks", "/api/v1/admin/settings", "/api/v1/admin/users", "/api/v1/admin/keys", "/api/v1/admin/runs"}
	for _, path := range reads {
		if a := s.do("GET", path, s.support, nil); a.status != http.StatusOK {
			t.Errorf("support GET %s: %d %s", path, a.status, a.body)
		}
		if a := s.do("GET", path, "", nil); a.status != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d", path, a.status)
		}
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/api/v1/admin/modules/m", `{"source": "return {}"}`},
		{"POST", "/api/v1/admin/modules/activate", `{"versions": {"m": 1}}`},
		{"POST", "/api/v1/admin/modules/m/activate", `{"version": 1}`},
		{"POST", "/api/v1/admin/modules/m/rollback", ``},
		{"DELETE", "/api/v1/admin/modules/m", ``},
		{"DELETE", "/api/v1/admin/modules/m/versions/1", ``},
		{"POST", "/api/v1/admin/hooks", `{"event": "order.paid", "module": "m", "function": "f"}`},
		{"DELETE", "/api/v1/admin/hooks/1", ``},
		{"PUT", "/api/v1/admin/settings/k", `{"value": "v"}`},
		{"DELETE", "/api/v1/admin/settings/k", ``},
		{"POST", "/api/v1/admin/users", `{"name": "x", "role": "admin"}`},
		{"POST", "/api/v1/admin/users/x/token", ``},
		{"DELETE", "/api/v1/admin/users/x", ``},
		{"POST", "/api/v1/admin/keys/rotate", ``},
		{"DELETE", "/api/v1/admin/keys/abc", ``},
		{"POST", "/api/v1/admin/dryrun", `{"module": "m", "function": "f"}`},
	}
	for _, w := range writes {
		t.Run(w.method+" "+w.path, func(t *testing.T) {
			var body any
			if w.body != "" {
				body = w.body
			}
			if a := s.do(w.method, w.path, s.support, body); a.status != http.StatusForbidden {
				t.Errorf("support: %d %s", a.status, a.body)
			}
			if a := s.do(w.method, w.path, "", body); a.status != http.StatusUnauthorized {
				t.Errorf("anonymous: %d %s", a.status, a.body)
			}
		})
	}
	// Nothing changed.
	var mods struct{ List []operator.Module }
	s.do("GET", "/api/v1/admin/modules", s.admin, nil).into(t, &mods)
	if len(mods.List) != 1 || mods.List[0].Latest != 1 || mods.List[0].Active != 1 {
		t.Fatalf("modules after refused writes: %+v", mods)
	}
}

func TestAdminModulesAPI(t *testing.T) {
	s := newAdminServer(t)
	a := s.do("POST", "/api/v1/admin/modules/greet", s.admin, map[string]any{"source": "local x = 1\nreturn {x = }\n"})
	if a.status != http.StatusBadRequest || a.obj(t)["details"].(map[string]any)["line"] != float64(2) {
		t.Fatalf("broken upload: %d %s", a.status, a.body)
	}
	for i, src := range []string{`return {v = 1}`, `return {v = 2}`} {
		var m operator.ModuleVersion
		s.do("POST", "/api/v1/admin/modules/greet", s.admin, map[string]any{"source": src, "activate": true}).into(t, &m)
		if m.Version != i+1 || !m.Active || m.Source != "" {
			t.Fatalf("upload %d: %+v", i, m)
		}
	}
	var active operator.ModuleVersion
	s.do("GET", "/api/v1/admin/modules/greet/versions/active", s.support, nil).into(t, &active)
	if active.Version != 2 || active.Source != `return {v = 2}` {
		t.Fatalf("active: %+v", active)
	}
	var rb struct{ Versions map[string]int }
	s.do("POST", "/api/v1/admin/modules/greet/rollback", s.admin, nil).into(t, &rb)
	if rb.Versions["greet"] != 1 {
		t.Fatalf("rollback: %+v", rb)
	}
	var detail struct {
		Versions    []operator.ModuleVersion
		Activations []operator.Activation
	}
	s.do("GET", "/api/v1/admin/modules/greet", s.support, nil).into(t, &detail)
	if len(detail.Versions) != 2 || !detail.Versions[1].Active || len(detail.Activations) != 3 {
		t.Fatalf("detail: %+v", detail)
	}
	tests := []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"unknown module", "GET", "/api/v1/admin/modules/nope", nil, 404},
		{"unknown version", "GET", "/api/v1/admin/modules/greet/versions/9", nil, 404},
		{"bad version", "GET", "/api/v1/admin/modules/greet/versions/x", nil, 400},
		{"activate unknown version", "POST", "/api/v1/admin/modules/greet/activate", map[string]any{"version": 9}, 404},
		{"activate without version", "POST", "/api/v1/admin/modules/greet/activate", map[string]any{}, 400},
		{"delete active version", "DELETE", "/api/v1/admin/modules/greet/versions/1", nil, 409},
		{"bind unknown event", "POST", "/api/v1/admin/hooks", map[string]any{"event": "x", "module": "greet"}, 400},
		{"bind missing function", "POST", "/api/v1/admin/hooks", map[string]any{"event": "order.paid", "module": "greet"}, 400},
		{"unknown hook", "DELETE", "/api/v1/admin/hooks/42", nil, 404},
		{"malformed body", "POST", "/api/v1/admin/modules/greet", "{", 400},
		{"dry run", "POST", "/api/v1/admin/dryrun", map[string]any{"source": "local i = ... return {v = require('greet').v + i.n}", "input": map[string]any{"n": 1}}, 200},
		{"delete version", "DELETE", "/api/v1/admin/modules/greet/versions/2", nil, 200},
		{"delete module", "DELETE", "/api/v1/admin/modules/greet", nil, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := s.do(tc.method, tc.path, s.admin, tc.body)
			if a.status != tc.status {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if tc.name == "dry run" && !strings.Contains(string(a.body), `"value":{"v":2}`) {
				t.Fatalf("dry run: %s", a.body)
			}
		})
	}
}

func TestAdminSettingsUsersKeys(t *testing.T) {
	s := newAdminServer(t)
	const secret = "very-secret-value-42"
	a := s.do("PUT", "/api/v1/admin/settings/api_key?provider=acme", s.admin, map[string]any{"value": secret, "secret": true})
	if a.status != 200 || strings.Contains(string(a.body), secret) {
		t.Fatalf("put secret: %d %s", a.status, a.body)
	}
	s.do("PUT", "/api/v1/admin/settings/url", s.admin, map[string]any{"value": "https://x.example"})
	for _, path := range []string{"/api/v1/admin/settings", "/api/v1/admin/settings?provider=acme", "/api/v1/admin/settings/api_key?provider=acme"} {
		a := s.do("GET", path, s.support, nil)
		if a.status != 200 || strings.Contains(string(a.body), secret) {
			t.Fatalf("GET %s: %d %s", path, a.status, a.body)
		}
	}
	var list struct{ List []operator.SettingView }
	s.do("GET", "/api/v1/admin/settings?scope=operator", s.admin, nil).into(t, &list)
	if len(list.List) != 1 || list.List[0].Key != "url" {
		t.Fatalf("operator settings: %+v", list)
	}
	if a := s.do("PUT", "/api/v1/admin/settings/k", s.admin, map[string]any{}); a.status != 400 {
		t.Fatalf("missing value: %d", a.status)
	}
	if a := s.do("DELETE", "/api/v1/admin/settings/api_key?provider=acme", s.admin, nil); a.status != 200 {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}

	// A support user: reads, is refused writes, is revoked.
	var ut operator.UserToken
	s.do("POST", "/api/v1/admin/users", s.admin, map[string]any{"name": "bob", "role": "support", "ttl": "1h"}).into(t, &ut)
	if ut.Token == "" || ut.User.Role != market.RoleSupport {
		t.Fatalf("user: %+v", ut)
	}
	if a := s.do("GET", "/api/v1/admin/runs", ut.Token, nil); a.status != 200 {
		t.Fatalf("user read: %d %s", a.status, a.body)
	}
	if a := s.do("POST", "/api/v1/admin/keys/rotate", ut.Token, nil); a.status != 403 {
		t.Fatalf("user write: %d %s", a.status, a.body)
	}
	if a := s.do("POST", "/api/v1/admin/users", s.admin, map[string]any{"name": "c", "role": "admin", "ttl": "soon"}); a.status != 400 {
		t.Fatalf("bad ttl: %d", a.status)
	}
	s.do("DELETE", "/api/v1/admin/users/bob", s.admin, nil)
	if a := s.do("GET", "/api/v1/admin/runs", ut.Token, nil); a.status != 401 || !strings.Contains(string(a.body), "revoked") {
		t.Fatalf("revoked user: %d %s", a.status, a.body)
	}

	// Rotation: the test's tokens (old key) work until the key retires.
	var k operator.KeyInfo
	s.do("POST", "/api/v1/admin/keys/rotate", s.admin, nil).into(t, &k)
	var fresh operator.UserToken
	s.do("POST", "/api/v1/admin/users", s.admin, map[string]any{"name": "ops", "role": "admin"}).into(t, &fresh)
	if a := s.do("DELETE", "/api/v1/admin/keys/"+k.ID, s.admin, nil); a.status != 409 {
		t.Fatalf("retire current: %d %s", a.status, a.body)
	}
	if a := s.do("DELETE", "/api/v1/admin/keys/"+opauth.KeyID([]byte(testSecret)), fresh.Token, nil); a.status != 200 {
		t.Fatalf("retire old: %d %s", a.status, a.body)
	}
	if a := s.do("GET", "/api/v1/admin/keys", s.admin, nil); a.status != 401 {
		t.Fatalf("token of a retired key: %d %s", a.status, a.body)
	}
	var keys struct{ List []operator.KeyInfo }
	s.do("GET", "/api/v1/admin/keys", fresh.Token, nil).into(t, &keys)
	if len(keys.List) != 2 || !keys.List[0].Current || keys.List[1].RetiredAt == 0 {
		t.Fatalf("keys: %+v", keys)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	s := newAdminServer(t)
	s.do("GET", "/api/v1/admin/modules", s.admin, nil)
	s.do("GET", "/api/v1/nowhere", "", nil)
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`vmarket_http_requests_total{method="GET",route="/api/v1/admin/modules",status="200"} 1`,
		`vmarket_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`vmarket_lua_states{state="max"} 4`,
		`vmarket_run_records_dropped_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
