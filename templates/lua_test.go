package templates_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/luafixture"
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
		t.Run(tc.dir, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			fx, err := luafixture.For(ctx, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer fx.Close()
			var names []string
			for _, f := range fx.Started {
				names = append(names, f.Name)
			}
			if fx.Name != tc.fixture || !slices.Equal(names, tc.fakes) {
				t.Fatalf("fixture %s started %v, want %s with %v", fx.Name, names, tc.fixture, tc.fakes)
			}
			rep, err := fx.Run(ctx, luatest.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			rep.Write(&buf, testing.Verbose())
			if !rep.OK() {
				t.Fatalf("Lua tests of %s failed:\n%s", tc.dir, buf.String())
			}
			t.Logf("%s", buf.String())
		})
	}
}
