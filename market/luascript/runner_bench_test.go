package luascript_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// BenchmarkRunScript measures a trivial start script through the Runner,
// bare and with settings, per-run module snapshot and run recording into
// SQLite (the records are flushed inside the timing).
func BenchmarkRunScript(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	engine, err := runtime.NewEngine(runtime.Options{MinStates: 2, MaxStates: 4, KV: db.KV(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer engine.Close()
	svc, err := operator.New(ctx, operator.Config{Store: db.Operator(), Engine: engine, SealKey: bytes.Repeat([]byte{1}, operator.SealKeySize)})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close(ctx)
	caller := market.Caller{OperatorRole: market.RoleAdmin}
	if _, err := svc.PutSetting(ctx, caller, "", "api_key", "secret-value-123", true); err != nil {
		b.Fatal(err)
	}
	run := market.ScriptRun{Step: market.JobStart, Hash: "h", Provider: "p", OrderID: "o",
		Source: `local input = ... return {secret = "s", data = {step = input.step}}`,
		Input:  map[string]any{"step": "start", "order": map[string]any{"id": "o"}}}
	for _, bc := range []struct {
		name   string
		runner *luascript.Runner
	}{
		{"bare", &luascript.Runner{Engine: engine, Logger: slog.New(slog.DiscardHandler)}},
		{"recorded", &luascript.Runner{Engine: engine, Logger: slog.New(slog.DiscardHandler), Settings: svc, Modules: svc.RunResolver, Recorder: svc}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.runner.RunScript(ctx, run); err != nil {
					b.Fatal(err)
				}
			}
			if err := svc.FlushRuns(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
	if d := svc.RecordsDropped(); d > 0 {
		b.Logf("%d records dropped", d)
	}
}
