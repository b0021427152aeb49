package scripts_test

import (
	"github.com/vmarket/vmarket/scripts/luafixture"
	"testing"
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
		t.Run(tc.dir, func(t *testing.T) { luafixture.RunTest(t, tc.dir, tc.fixture, tc.fakes...) })
	}
}
