package luafixture

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vmarket/vmarket/runtime/luatest"
)

// RunTest runs the Lua tests of dir as a Go test: it starts dir's fixture,
// checks it is the named one with exactly the named fakes, and fails t on
// any failing Lua test. The bundled modules' and templates' Go tests use
// it.
func RunTest(t *testing.T, dir, fixture string, fakes ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	fx, err := For(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fx.Close()
	var names []string
	for _, f := range fx.Started {
		names = append(names, f.Name)
	}
	if fx.Name != fixture || !slices.Equal(names, fakes) {
		t.Fatalf("fixture %s started %v, want %s with %v", fx.Name, names, fixture, fakes)
	}
	rep, err := fx.Run(ctx, luatest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Write(&buf, testing.Verbose())
	if !rep.OK() {
		t.Fatalf("Lua tests of %s failed:\n%s", dir, buf.String())
	}
	t.Logf("%s", buf.String())
}
