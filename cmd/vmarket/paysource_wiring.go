package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/market/paysource"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
	"github.com/vmarket/vmarket/templates/vcpmonitor"
)

// paymentConfig is what `vmarket serve` configures of the payment sources.
type paymentConfig struct {
	sources  []string
	interval time.Duration
	timeout  time.Duration
}

// addPaymentFlags adds the serve flags of the payment sources.
func addPaymentFlags(cmd *cobra.Command, cfg *paymentConfig) {
	f := cmd.Flags()
	f.StringSliceVar(&cfg.sources, "payment-sources", envList("VMARKET_PAYMENT_SOURCES"),
		"payment sources to poll for confirmed payments: kassa24; their settings live in the settings scope paysource:<name> (env VMARKET_PAYMENT_SOURCES, comma-separated)")
	f.DurationVar(&cfg.interval, "payment-poll-interval", envDuration("VMARKET_PAYMENT_POLL_INTERVAL", paysource.DefaultInterval),
		"time between two polls of a payment source (env VMARKET_PAYMENT_POLL_INTERVAL)")
	f.DurationVar(&cfg.timeout, "payment-poll-timeout", envDuration("VMARKET_PAYMENT_POLL_TIMEOUT", paysource.DefaultTimeout),
		"deadline of one poll's script run (env VMARKET_PAYMENT_POLL_TIMEOUT)")
}

// newPoller builds the payment source poller of the enabled sources; nil
// when none is enabled.
func newPoller(cfg paymentConfig, engine *runtime.Engine, orders *market.Orders, db *sqlite.DB, ops *operator.Service,
	allowHosts []string, rootCAs []byte, log *slog.Logger) (*paysource.Poller, error) {
	if len(cfg.sources) == 0 {
		return nil, nil
	}
	var sources []paysource.Source
	for _, name := range cfg.sources {
		s, ok := paysource.Named(name)
		if !ok {
			return nil, fmt.Errorf("--payment-sources: unknown source %q (known: %s)", name, paysource.Kassa24Name)
		}
		sources = append(sources, s)
	}
	if cfg.interval < time.Second {
		return nil, fmt.Errorf("--payment-poll-interval must be at least 1s, not %s", cfg.interval)
	}
	p, err := paysource.New(paysource.Config{
		Engine: engine, Payer: orders, KV: db.KV(), Providers: db, Settings: ops, Modules: ops.RunResolver,
		AllowedHosts: allowHosts, RootCAs: rootCAs, Interval: cfg.interval, Timeout: cfg.timeout, Logger: log,
		Record: func(r paysource.Record) {
			res := r.Result
			if res != nil && r.Poll != nil {
				// Record the outcome of the confirmations, not the raw report.
				cp := *res
				cp.Value = r.Poll
				res = &cp
			}
			run := operator.RunOf(paysource.RunKind, r.Source, res, r.Err)
			run.Provider = paysource.SettingsScope(r.Source)
			ops.Record(run)
		},
	}, sources...)
	if err != nil {
		return nil, err
	}
	log.Info("payment sources enabled", "sources", p.Sources(), "interval", cfg.interval)
	return p, nil
}

// mountVCPMonitor mounts the bundled VCP Site Monitor's provider adapter
// at /providers/vcp-site-monitor, the apiHost of its type.
func mountVCPMonitor(e *echo.Echo, engine *runtime.Engine, db *sqlite.DB, ops *operator.Service, serviceKey func() string,
	allowHosts []string, rootCAs []byte, timeout time.Duration, log *slog.Logger) error {
	h, err := vcpmonitor.New(vcpmonitor.Config{
		Engine: engine, Orders: db, KV: db.KV(), ServiceKey: serviceKey, Settings: ops, Modules: ops.RunResolver,
		AllowedHosts: allowHosts, RootCAs: rootCAs, Timeout: timeout, Logger: log,
		Record: func(r vcpmonitor.RunRecord) {
			res := r.Result
			if res != nil {
				// Telemetry is the buyer's data: keep the run, not the answer.
				cp := *res
				cp.Value = nil
				res = &cp
			}
			run := operator.RunOf(vcpmonitor.RunKind, "vcp-site-monitor."+r.Function, res, r.Err)
			run.OrderID, run.Provider = r.OrderID, vcpmonitor.Provider
			ops.Record(run)
		},
	})
	if err != nil {
		return err
	}
	e.Any(vcpMonitorPath+"/*", echo.WrapHandler(http.StripPrefix(vcpMonitorPath, h)))
	return nil
}

// vcpMonitorPath is where the VCP Site Monitor's adapter is mounted (its
// type's apiHost is {{publicURL}} + this path).
const vcpMonitorPath = "/providers/vcp-site-monitor"
