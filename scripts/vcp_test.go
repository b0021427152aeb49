package scripts_test

import (
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
)

func TestVCPLua(t *testing.T) {
	const site = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"
	vcp := vcpfake.New(vcpfake.Config{Keys: map[string][]string{
		"vcp-test-key": {vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry},
		"config-only":  {vcpfake.ScopeConfig},
	}})
	defer vcp.Close()
	vcp.AddSite(site, vcpfake.SiteConfig{OperatingMode: "self-consumption", Constraints: map[string]any{"maxExportKw": 50}})
	now := time.Now()
	applied, old := now.Add(-2*time.Hour), now.Add(-30*time.Hour)
	for _, c := range []vcpfake.Command{
		{ID: "c1", Type: "setMode", Status: "pending", CreatedAt: now.Add(-time.Minute)},
		{ID: "c2", Type: "setLimit", Status: "applied", CreatedAt: applied, AppliedAt: &applied},
		{ID: "c3", Type: "setLimit", Status: "applied", CreatedAt: old, AppliedAt: &old},
	} {
		if err := vcp.AddCommand(site, c); err != nil {
			t.Fatal(err)
		}
	}
	ctl := &control{
		main: &vcp.Faults,
		count: func(L *lua.LState, f *lua.LTable) int {
			ep := str(f, "endpoint")
			return vcp.Count(func(c vcpfake.Call) bool { return ep == "" || c.Endpoint == ep })
		},
	}
	runLuaTests(t, "vcp", ctl, luatest.Config{
		Settings: map[string]string{
			"vcp.base_url": vcp.URL(),
			"vcp.api_key":  "vcp-test-key",
			"vcp.backoff":  "0.01",
		},
		SecretKeys: []string{"vcp.api_key"},
	})
}
