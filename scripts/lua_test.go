package scripts_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/luafixture"
)

// TestLua runs every bundled module's Lua tests (<name>/*_test.lua)
// against the module's fakes, started by the fixture its luatest.json
// names; the modules are resolved from the embedded tree, so the copy in
// the binary is the one tested.
func TestLua(t *testing.T) {
	tests := []struct {
		dir, fixture string
		fakes        []string
	}{
		{dir: "vcc", fixture: "vcc", fakes: []string{"vccfake", "sftpfake"}},
		{dir: "vcp", fixture: "vcp", fakes: []string{"vcpfake"}},
		{dir: "kassa24", fixture: "kassa24", fakes: []string{"kassa24fake"}},
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
