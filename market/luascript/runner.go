package luascript

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
)

// Settings gives lifecycle scripts their settings: the values settings.get
// returns for a provider's scripts and the keys of the secret ones. The
// map is shared and read-only. *operator.Service implements it.
type Settings interface {
	ScriptSettings(provider string) (values map[string]string, secretKeys []string)
}

// Recorder records script runs. *operator.Service implements it; Record
// must not block.
type Recorder interface {
	Record(run operator.Run)
}

// Runner implements market.ScriptRunner on the sandboxed engine.
type Runner struct {
	Engine *runtime.Engine
	// RootCAs are extra PEM roots scripts trust (private endpoints).
	RootCAs []byte
	Logger  *slog.Logger
	// Settings, when set, gives scripts their provider's settings.
	Settings Settings
	// Modules, when set, returns the module resolver of one run (taken
	// once per run, so every require of the run sees one set of
	// versions); nil uses the engine's resolver.
	Modules func() runtime.ModuleResolver
	// Recorder, when set, records every run (the start script's secret is
	// redacted from the recorded result).
	Recorder Recorder
}

// RunScript runs a lifecycle script with its input and returns its result
// table. Script errors and limits come back as errors carrying the Lua
// position.
func (r *Runner) RunScript(ctx context.Context, run market.ScriptRun) (map[string]any, error) {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := runtime.RunOptions{
		AllowedHosts: run.AllowedHosts,
		RootCAs:      r.RootCAs,
		KVScope:      run.Provider,
		Logger:       log.With("order", run.OrderID, "script", string(run.Step), "provider", run.Provider),
	}
	if r.Settings != nil {
		opts.Settings, opts.SecretKeys = r.Settings.ScriptSettings(run.Provider)
	}
	if r.Modules != nil {
		opts.Resolver = r.Modules()
	}
	res, err := r.Engine.Run(ctx, runtime.Script{Name: string(run.Step), Source: run.Source}, run.Input, opts)
	out, err := scriptResult(run.Step, res, err)
	if r.Recorder != nil {
		r.record(run, res, out, err)
	}
	return out, err
}

// scriptResult checks what the script returned.
func scriptResult(step market.JobKind, res *runtime.Result, err error) (map[string]any, error) {
	if err != nil {
		if errors.Is(err, runtime.ErrBusy) {
			return nil, &market.Error{Kind: market.KindBusy, Message: "script engine busy", Err: err}
		}
		return nil, fmt.Errorf("%s script: %w", step, err)
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
	return nil, fmt.Errorf("%s script must return a table of named fields", step)
}

// record stores the run's record: one cheap, non-blocking call.
func (r *Runner) record(run market.ScriptRun, res *runtime.Result, out map[string]any, err error) {
	var rec *runtime.Result
	if res != nil {
		cp := *res
		cp.Value = nil
		if out != nil {
			cp.Value = operator.RedactScriptResult(out)
		}
		rec = &cp
	}
	rr := operator.RunOf(operator.KindScript, string(run.Step), rec, err)
	rr.Version, rr.OrderID, rr.Provider = run.Hash, run.OrderID, run.Provider
	r.Recorder.Record(rr)
}
