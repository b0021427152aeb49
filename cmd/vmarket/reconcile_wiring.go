package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/market/reconcile"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// reconcileConfig is what `vmarket serve` configures of the daily VCC
// reconciliation.
type reconcileConfig struct {
	// at is "HH:MM" China time; empty: no schedule.
	at        string
	providers []string
}

// addReconcileFlags adds the serve flags of the daily reconciliation.
func addReconcileFlags(cmd *cobra.Command, cfg *reconcileConfig) {
	f := cmd.Flags()
	f.StringVar(&cfg.at, "vcc-reconcile-at", envString("VMARKET_VCC_RECONCILE_AT", ""),
		"reconcile the previous day's VCC gas top-ups with VCC's reconciliation file every day at HH:MM, China time (UTC+8); off when empty (env VMARKET_VCC_RECONCILE_AT)")
	providers := envList("VMARKET_VCC_RECONCILE_PROVIDERS")
	if len(providers) == 0 {
		providers = []string{reconcile.DefaultProvider}
	}
	f.StringSliceVar(&cfg.providers, "vcc-reconcile-providers", providers,
		"providers the daily VCC reconciliation covers (env VMARKET_VCC_RECONCILE_PROVIDERS, comma-separated)")
}

// schedule returns the daily schedule; nil when none is configured.
func (cfg reconcileConfig) schedule() (*reconcile.Schedule, error) {
	if cfg.at == "" {
		return nil, nil
	}
	at, err := reconcile.ParseClock(cfg.at)
	if err != nil {
		return nil, fmt.Errorf("--vcc-reconcile-at: %w", err)
	}
	if len(cfg.providers) == 0 {
		return nil, fmt.Errorf("--vcc-reconcile-providers: no provider")
	}
	return &reconcile.Schedule{At: at, Providers: cfg.providers}, nil
}

// newReconciler builds the reconciliation service: reports in the
// database, the providers' settings, run records.
func newReconciler(engine *runtime.Engine, db *sqlite.DB, ops *operator.Service, allowHosts []string, rootCAs []byte,
	log *slog.Logger) (*reconcile.Service, error) {
	return reconcile.New(reconcile.Config{
		Engine: engine, Market: db, Store: db.Reconcile(), Settings: ops, Modules: ops.RunResolver,
		AllowedHosts: allowHosts, RootCAs: rootCAs, Recorder: ops, Logger: log,
	})
}
