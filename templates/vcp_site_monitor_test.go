package templates_test

import (
	"net/http"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
)

// Sites of the VCP fake in the site monitor's tests.
const (
	monitorSite = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"
	monitorKey  = "vcp-monitor-key"
)

// newMonitorFake starts a VCP fake with one site, three commands (one
// pending, one applied 2 h ago, one 30 h ago) and a key with every scope.
func newMonitorFake(t *testing.T) *vcpfake.Server {
	t.Helper()
	vcp := vcpfake.New(vcpfake.Config{Keys: map[string][]string{
		monitorKey: {vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry},
	}})
	t.Cleanup(vcp.Close)
	vcp.AddSite(monitorSite, vcpfake.SiteConfig{OperatingMode: "self-consumption", Constraints: map[string]any{"maxExportKw": 50}})
	now := time.Now()
	applied, old := now.Add(-2*time.Hour), now.Add(-30*time.Hour)
	for _, c := range []vcpfake.Command{
		{ID: "c1", Type: "setMode", Status: "pending", CreatedAt: now.Add(-time.Minute)},
		{ID: "c2", Type: "setLimit", Status: "applied", CreatedAt: applied, AppliedAt: &applied},
		{ID: "c3", Type: "setLimit", Status: "applied", CreatedAt: old, AppliedAt: &old},
	} {
		if err := vcp.AddCommand(monitorSite, c); err != nil {
			t.Fatal(err)
		}
	}
	return vcp
}

// TestVCPSiteMonitorLua runs the Site Monitor template's Lua tests
// (start, stop, refund and the adapter's api.lua) against the VCP fake.
func TestVCPSiteMonitorLua(t *testing.T) {
	vcp := newMonitorFake(t)
	fake := luaFuncs(map[string]lua.LGFunction{
		// count{endpoint=, site=} counts the fake's calls.
		"count": func(L *lua.LState) int {
			f := L.OptTable(1, L.NewTable())
			ep, site := optString(f, "endpoint"), optString(f, "site")
			L.Push(lua.LNumber(vcp.Count(func(c vcpfake.Call) bool {
				return (ep == "" || c.Endpoint == ep) && (site == "" || c.SiteID == site)
			})))
			return 1
		},
		// scopes(...) replaces the test key's scopes (none: all of them).
		"scopes": func(L *lua.LState) int {
			var scopes []string
			for i := 1; i <= L.GetTop(); i++ {
				scopes = append(scopes, L.CheckString(i))
			}
			if len(scopes) == 0 {
				scopes = []string{vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry}
			}
			vcp.SetKey(monitorKey, scopes...)
			return 0
		},
		"fail_next": func(L *lua.LState) int {
			vcp.Faults.FailNext(L.CheckInt(1), L.OptInt(2, http.StatusInternalServerError))
			return 0
		},
		"reject_auth_next": func(L *lua.LState) int {
			vcp.Faults.RejectAuthNext(L.CheckInt(1))
			return 0
		},
		"reset": func(L *lua.LState) int {
			vcp.Faults.FailNext(0, 0)
			vcp.Faults.RejectAuthNext(0)
			return 0
		},
	})
	runTemplateLuaTests(t, "vcp-site-monitor", map[string]runtime.HostModule{"fake": fake}, luatest.Config{
		Settings: map[string]string{
			"vcp.base_url": vcp.URL(),
			"vcp.api_key":  monitorKey,
			"vcp.backoff":  "0.01",
		},
		SecretKeys: []string{"vcp.api_key"},
	})
}
