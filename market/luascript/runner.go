package luascript

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// Runner implements market.ScriptRunner on the sandboxed engine.
type Runner struct {
	Engine *runtime.Engine
	// RootCAs are extra PEM roots scripts trust (private endpoints).
	RootCAs []byte
	Logger  *slog.Logger
}

// RunScript runs a lifecycle script with its input and returns its result
// table. Script errors and limits come back as errors carrying the Lua
// position.
func (r *Runner) RunScript(ctx context.Context, run market.ScriptRun) (map[string]any, error) {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	res, err := r.Engine.Run(ctx, runtime.Script{Name: string(run.Step), Source: run.Source}, run.Input, runtime.RunOptions{
		AllowedHosts: run.AllowedHosts,
		RootCAs:      r.RootCAs,
		KVScope:      run.Provider,
		Logger:       log.With("order", run.OrderID, "script", string(run.Step), "provider", run.Provider),
	})
	if err != nil {
		if errors.Is(err, runtime.ErrBusy) {
			return nil, &market.Error{Kind: market.KindBusy, Message: "script engine busy", Err: err}
		}
		return nil, fmt.Errorf("%s script: %w", run.Step, err)
	}
	switch v := res.Value.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	case []any:
		if len(v) == 0 {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("%s script must return a table of named fields", run.Step)
}
