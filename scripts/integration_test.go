package scripts_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts"
)

// TestIntegrationLua runs the shared integration helpers' Lua tests; the
// settings they read are in integration/luatest.json, so
// `vmarket script test scripts/integration` runs them too.
func TestIntegrationLua(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rep, err := luatest.Run(ctx, "integration", luatest.Config{Modules: runtime.FSResolver(scripts.FS())})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Write(&buf, testing.Verbose())
	if !rep.OK() {
		t.Fatalf("Lua tests failed:\n%s", buf.String())
	}
}
