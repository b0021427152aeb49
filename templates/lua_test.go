package templates_test

import (
	"github.com/vmarket/vmarket/scripts/luafixture"
	"testing"
)

// TestLua runs the bundled templates' Lua tests (<folder>/*_test.lua)
// against their fakes, started by the fixture each folder's luatest.json
// names: the Gas Top-up's against the VCC fake (HTTPS with its own CA,
// passed as a root), the Site Monitor's (start, stop, refund and the
// adapter's api.lua) against the VCP fake. The bundled modules come from
// the embedded scripts tree; the test-only module "template" reads the
// folder's scripts.
func TestLua(t *testing.T) {
	tests := []struct {
		dir, fixture string
		fakes        []string
	}{
		{dir: "vcc-gas-topup", fixture: "vcc-gas-topup", fakes: []string{"vccfake"}},
		{dir: "vcp-site-monitor", fixture: "vcp-site-monitor", fakes: []string{"vcpfake"}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) { luafixture.RunTest(t, tc.dir, tc.fixture, tc.fakes...) })
	}
}
