package runtime

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// newTestEngine builds an engine closed at the end of the test.
func newTestEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limits.Timeout == 0 {
		opts.Limits.Timeout = 2 * time.Second
	}
	e, err := NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// testCtx bounds a test's runs.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func runSrc(t testing.TB, e *Engine, src string, input any, opts RunOptions) (*Result, error) {
	t.Helper()
	return e.Run(testCtx(t), Script{Name: "test", Source: src}, input, opts)
}
