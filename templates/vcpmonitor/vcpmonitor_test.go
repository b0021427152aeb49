package vcpmonitor_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/scripts"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
	"github.com/vmarket/vmarket/templates/vcpmonitor"
)

const (
	site   = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"
	apiKey = "vcp-adapter-key"
)

// orders is an in-memory OrderReader.
type orders map[string]*market.Order

func (o orders) Order(_ context.Context, id string) (*market.Order, error) {
	if x, ok := o[id]; ok {
		return x, nil
	}
	return nil, market.NotFound("order", id)
}

// settings gives every provider the same settings.
type settings map[string]string

func (s settings) ScriptSettings(string) (map[string]string, []string) {
	return s, []string{"vcp.api_key"}
}

func TestHandler(t *testing.T) {
	vcp := vcpfake.New(vcpfake.Config{Keys: map[string][]string{apiKey: {vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry}}})
	defer vcp.Close()
	vcp.AddSite(site, vcpfake.SiteConfig{OperatingMode: "backup"})

	eng, err := runtime.NewEngine(runtime.Options{Resolver: runtime.FSResolver(scripts.FS()), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	seed, _ := opauth.NewServiceSeed()
	signer, _ := opauth.NewServiceSigner(seed)
	kv := runtime.NewMemoryKV()
	ctx := context.Background()
	const monitorToken = "vcpm_0123456789abcdef"
	sum := sha256.Sum256([]byte(monitorToken))
	if err := kv.Set(ctx, vcpmonitor.Provider, vcpmonitor.TokenKeyPrefix+"running", hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	order := func(id, provider string, status market.ServiceStatus) *market.Order {
		return &market.Order{ID: id, Provider: provider, ServiceStatus: status, ServiceOptions: map[string]string{"siteId": site}}
	}
	var records []vcpmonitor.RunRecord
	h, err := vcpmonitor.New(vcpmonitor.Config{
		Engine: eng, KV: kv, ServiceKey: signer.PublicKey,
		Orders: orders{
			"running": order("running", vcpmonitor.Provider, market.ServiceRunning),
			"done":    order("done", vcpmonitor.Provider, market.ServiceDone),
			"foreign": order("foreign", "someone-else", market.ServiceRunning),
		},
		Settings:     settings{"vcp.base_url": vcp.URL(), "vcp.api_key": apiKey, "vcp.retries": "0"},
		AllowedHosts: []string{"127.0.0.1"},
		Record:       func(r vcpmonitor.RunRecord) { records = append(records, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	now := time.Now()
	svc := func(provider, order string, ttl time.Duration) string {
		tok, err := signer.Issue("AR-user", provider, order, "type-1", ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	tests := []struct {
		name     string
		method   string
		path     string
		auth     string
		status   int
		contains string
		vcpCalls int
	}{
		{name: "info needs nothing", path: "/info", status: 200, contains: `"maxTelemetryWindowHours":48`},
		{name: "no token", path: "/config?userServiceId=running", status: 401, contains: "bearer token is required"},
		{name: "service token", path: "/config?userServiceId=running", auth: svc(vcpmonitor.Provider, "running", time.Minute), status: 200, contains: `"operatingMode":"backup"`, vcpCalls: 1},
		{name: "service token without userServiceId", path: "/commands", auth: svc(vcpmonitor.Provider, "running", time.Minute), status: 200, contains: `"commands":[]`, vcpCalls: 1},
		{name: "telemetry window", path: "/telemetry?userServiceId=running&from=2025-06-01T00:00:00Z&to=2025-06-01T00:30:00Z", auth: svc(vcpmonitor.Provider, "running", time.Minute), status: 200, contains: `"meterId":"meter-3f2b8c1e"`, vcpCalls: 1},
		{name: "bad window answered before VCP", path: "/telemetry?userServiceId=running&hours=72", auth: svc(vcpmonitor.Provider, "running", time.Minute), status: 400, contains: "hours must be"},
		{name: "token for another provider", path: "/config?userServiceId=running", auth: svc("v-kube-service", "running", time.Minute), status: 401, contains: "service token"},
		{name: "expired token", path: "/config?userServiceId=running", auth: svc(vcpmonitor.Provider, "running", -time.Minute), status: 401, contains: "expired"},
		{name: "token for another order", path: "/config?userServiceId=done", auth: svc(vcpmonitor.Provider, "running", time.Minute), status: 401, contains: "another user service"},
		{name: "service not running", path: "/config", auth: svc(vcpmonitor.Provider, "done", time.Minute), status: 409, contains: "not running"},
		{name: "order of another provider", path: "/config", auth: svc(vcpmonitor.Provider, "foreign", time.Minute), status: 404},
		{name: "unknown order", path: "/config", auth: svc(vcpmonitor.Provider, "nope", time.Minute), status: 404},
		{name: "monitoring token", path: "/config?userServiceId=running", auth: "Bearer " + monitorToken, status: 200, contains: `"siteId":"` + site + `"`, vcpCalls: 1},
		{name: "monitoring token of another order", path: "/config?userServiceId=done", auth: "Bearer " + monitorToken, status: 401, contains: "not valid"},
		{name: "wrong monitoring token", path: "/config?userServiceId=running", auth: "Bearer vcpm_nope", status: 401, contains: "not valid"},
		{name: "monitoring token without order", path: "/config", auth: "Bearer " + monitorToken, status: 401, contains: "userServiceId is required"},
		{name: "not a GET", method: "POST", path: "/config", status: 405},
		{name: "unknown function", path: "/deploy", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := vcp.CallCount("")
			req, _ := http.NewRequestWithContext(ctx, cmp.Or(tc.method, "GET"), srv.URL+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
				t.Fatalf("got %d %s, want %d containing %q", resp.StatusCode, body, tc.status, tc.contains)
			}
			if n := vcp.CallCount("") - before; n != tc.vcpCalls {
				t.Fatalf("VCP saw %d calls, want %d", n, tc.vcpCalls)
			}
		})
	}
	if len(records) != 5 {
		t.Fatalf("%d runs recorded, want 5 (one per call that reached api.lua)", len(records))
	}

	t.Run("VCP failing", func(t *testing.T) {
		vcp.Faults.FailNext(5, http.StatusInternalServerError)
		defer vcp.Faults.FailNext(0, 0)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/config", nil)
		req.Header.Set("Authorization", svc(vcpmonitor.Provider, "running", time.Minute))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Code, Message string }
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != http.StatusBadGateway || e.Code != "INTERNAL_SERVER_ERROR" || e.Message == "" {
			t.Fatalf("got %d %+v", resp.StatusCode, e)
		}
	})
}

func TestNewChecksItsScript(t *testing.T) {
	eng, _ := runtime.NewEngine(runtime.Options{})
	defer eng.Close()
	_, err := vcpmonitor.New(vcpmonitor.Config{Engine: eng, Orders: orders{}, KV: runtime.NewMemoryKV(),
		ServiceKey: func() string { return "" }, Script: "return {"})
	if err == nil {
		t.Fatal("a script that does not compile was accepted")
	}
	if _, err := vcpmonitor.New(vcpmonitor.Config{Engine: eng}); err == nil {
		t.Fatal("missing dependencies accepted")
	}
}
