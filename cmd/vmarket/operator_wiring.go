package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/httpapi"
	"github.com/vmarket/vmarket/market/metrics"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// sealKeyFile is the file in the data directory holding the key that seals
// secret settings and rotated JWT signing keys at rest.
const sealKeyFile = "settings.key"

// operatorConfig is what `vmarket serve` configures of the operator
// extensions (hooks, hot reload, metrics).
type operatorConfig struct {
	hooksDir      string
	beforeTimeout time.Duration
	afterTimeout  time.Duration
	hookWorkers   int
	metrics       bool
}

// addOperatorFlags adds the serve flags of the operator extensions.
func addOperatorFlags(cmd *cobra.Command, cfg *operatorConfig) {
	f := cmd.Flags()
	f.StringVar(&cfg.hooksDir, "hooks-dir", envString("VMARKET_HOOKS_DIR", ""),
		"directory of operator Lua modules (DIR/modules/<name>.lua) and hooks (DIR/hooks/<name>.lua), loaded at start and reloaded when they change (env VMARKET_HOOKS_DIR)")
	f.DurationVar(&cfg.beforeTimeout, "hook-timeout", envDuration("VMARKET_HOOK_TIMEOUT", operator.DefaultBeforeTimeout),
		"deadline of one before-check hook; a check that runs out does not block the action (env VMARKET_HOOK_TIMEOUT)")
	f.DurationVar(&cfg.afterTimeout, "after-hook-timeout", envDuration("VMARKET_AFTER_HOOK_TIMEOUT", operator.DefaultAfterTimeout),
		"deadline of one after-event hook (env VMARKET_AFTER_HOOK_TIMEOUT)")
	f.IntVar(&cfg.hookWorkers, "hook-workers", envInt("VMARKET_HOOK_WORKERS", operator.DefaultHookWorkers),
		"after-event hooks run at once, each on a Lua state of the pool (env VMARKET_HOOK_WORKERS)")
	f.BoolVar(&cfg.metrics, "metrics", envBool("VMARKET_METRICS", true),
		"serve Prometheus metrics at GET /metrics (env VMARKET_METRICS)")
}

// operatorParts are the operator service and the metrics of an app.
type operatorParts struct {
	ops     *operator.Service
	metrics *metrics.Metrics
	// stopWatch stops the hooks directory watcher (nil when none).
	stopWatch func()
}

// close stops the watcher and the operator service (after-hooks still
// queued get a few seconds; run records are written).
func (p *operatorParts) close() {
	if p.stopWatch != nil {
		p.stopWatch()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.ops.Close(ctx); err != nil {
		slog.Default().Warn("operator service close", "err", err)
	}
}

// newOperatorParts builds the operator service (modules over bundled,
// hooks, settings, users, run records) and the metrics, and starts the
// hooks directory watcher when one is configured.
func newOperatorParts(ctx context.Context, cfg operatorConfig, dataDir string, db *sqlite.DB, engine *runtime.Engine,
	bundled runtime.ModuleResolver, keys *opauth.Keyring, hookHosts []string, rootCAs []byte, log *slog.Logger) (*operatorParts, error) {
	sealKey, err := operator.LoadSealKey(filepath.Join(dataDir, sealKeyFile))
	if err != nil {
		return nil, err
	}
	p := &operatorParts{}
	p.metrics = metrics.New(metrics.Sources{
		Engine:         engine.Stats,
		QueueDepth:     func(ctx context.Context) (int, error) { return db.QueueDepth(ctx, time.Now()) },
		OrderCounts:    db.OrderStatusCounts,
		RecordsDropped: func() uint64 { return p.ops.RecordsDropped() },
	})
	// After-hooks never take more than half the Lua states: lifecycle
	// scripts and before-checks keep the rest.
	workers := cfg.hookWorkers
	if half := max(1, engine.Stats().MaxStates/2); workers > half {
		log.Warn("--hook-workers capped at half the Lua states", "hook_workers", workers, "lua_max_states", engine.Stats().MaxStates)
		workers = half
	}
	p.ops, err = operator.New(ctx, operator.Config{
		Store: db.Operator(), Engine: engine, Bundled: bundled, Keys: keys, SealKey: sealKey, Logger: log,
		BeforeTimeout: cfg.beforeTimeout, AfterTimeout: cfg.afterTimeout, HookWorkers: workers,
		HookHosts: hookHosts, RootCAs: rootCAs,
		Observe: func(r operator.Run) {
			p.metrics.ObserveRun(r.Kind, r.Name, r.OK, r.Limit, time.Duration(r.Duration*float64(time.Millisecond)))
		},
	})
	if err != nil {
		return nil, err
	}
	if cfg.hooksDir != "" {
		if p.stopWatch, err = p.ops.WatchDir(context.WithoutCancel(ctx), cfg.hooksDir); err != nil {
			p.close()
			return nil, fmt.Errorf("--hooks-dir: %w", err)
		}
		log.Info("watching hooks directory", "dir", cfg.hooksDir)
	}
	return p, nil
}

// observer is the API's request observer: the metrics when on.
func (p *operatorParts) observer(on bool) httpapi.RequestObserver {
	if !on {
		return nil
	}
	return p.metrics
}

// handler serves the metrics when on.
func (p *operatorParts) handler(on bool) http.Handler {
	if !on {
		return nil
	}
	return p.metrics.Handler()
}
