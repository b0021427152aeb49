package operator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/google/uuid"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// Dry-run limits.
const (
	MaxDryRunTimeout = 30 * time.Second
	MaxDryRunKV      = 1000
)

// DryRunRequest asks for one run of a module function, a hook or a
// script in a sandbox with no effect outside it: kv reads and writes go to
// an in-memory store seeded with KV, HTTP reaches only AllowHosts (fakes),
// nothing is recorded.
type DryRunRequest struct {
	// Module names a stored module; Version picks one (0: the active
	// one). Source, instead, is Lua text to try before uploading it
	// (under Module's name when given, so require sees it).
	Module  string `json:"module"`
	Version int    `json:"version"`
	Source  string `json:"source"`
	// Function is the function of the module to call. Event, instead,
	// calls the event's conventional function and, for a before-check,
	// interprets a rejection. With neither, Source runs as a script
	// (a lifecycle script: input in, table out).
	Function string `json:"function"`
	Event    string `json:"event"`
	// Input is the function's argument (the event table) or the script's
	// input.
	Input map[string]any `json:"input"`
	// Provider picks the settings scope (empty: the operator's, as hooks
	// see it); Settings override single values and Secrets names those of
	// Settings that are secret.
	Provider string            `json:"provider"`
	Settings map[string]string `json:"settings"`
	Secrets  []string          `json:"secrets"`
	// AllowHosts are the hosts (fakes) the run may call over HTTP.
	AllowHosts []string `json:"allowHosts"`
	// KV seeds the in-memory kv store.
	KV map[string]string `json:"kv"`
	// TimeoutMs is the run's deadline (default the after-hook deadline,
	// at most 30 s).
	TimeoutMs int `json:"timeoutMs"`
}

// DryRunResult is the outcome of a dry run. Secret values are redacted
// from every field.
type DryRunResult struct {
	OK bool `json:"ok"`
	// Value is what the function or script returned.
	Value any `json:"value"`
	// Rejected is a before-check's rejection message.
	Rejected    string            `json:"rejected,omitempty"`
	Error       string            `json:"error,omitempty"`
	ErrorLine   int               `json:"errorLine,omitempty"`
	Limit       string            `json:"limit,omitempty"`
	Logs        []RunLog          `json:"logs"`
	LogsDropped int               `json:"logsDropped,omitempty"`
	DurationMs  float64           `json:"durationMs"`
	Modules     []string          `json:"modules,omitempty"`
	Version     string            `json:"version,omitempty"`
	KV          map[string]string `json:"kv"`
}

// dryRunner owns the engine of dry runs: its own small pool (dry runs
// never take states from real runs) over an in-memory kv, each run in a
// scope of its own.
type dryRunner struct {
	engine *runtime.Engine
	kv     *runtime.MemoryKV
}

func newDryRunner(cfg Config) (*dryRunner, error) {
	kv := runtime.NewMemoryKV()
	limits := runtime.DefaultLimits()
	limits.Timeout = cfg.AfterTimeout
	eng, err := runtime.NewEngine(runtime.Options{MinStates: 1, MaxStates: 2, PoolWait: 5 * time.Second,
		Limits: limits, KV: kv, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("dry-run engine: %w", err)
	}
	return &dryRunner{engine: eng, kv: kv}, nil
}

func (d *dryRunner) close() error { return d.engine.Close() }

// DryRun runs a module function, a hook or a script as the request says,
// with no effect outside the sandbox. Modules resolve as in a real run,
// except that the module under test is the requested version or source.
func (s *Service) DryRun(ctx context.Context, caller market.Caller, req DryRunRequest) (*DryRunResult, error) {
	if err := canWrite(caller, "a dry run"); err != nil {
		return nil, err
	}
	if req.Event != "" && !validEvent(req.Event) {
		return nil, market.Invalid("event", "%q is not a hook event", req.Event).WithDetail("events", eventNames())
	}
	fn := req.Function
	if fn == "" && req.Event != "" {
		fn = FunctionFor(req.Event)
	}
	name, source, version, err := s.dryRunSource(ctx, req)
	if err != nil {
		return nil, err
	}
	if fn == "" && req.Source == "" {
		return nil, market.Invalid("function", "name the function (or event) to call on module %q", name)
	}
	timeout := s.cfg.AfterTimeout
	if req.TimeoutMs > 0 {
		timeout = min(time.Duration(req.TimeoutMs)*time.Millisecond, MaxDryRunTimeout)
	}
	if len(req.KV) > MaxDryRunKV {
		return nil, market.Invalid("kv", "at most %d entries", MaxDryRunKV)
	}

	// Settings: the real ones of the scope, overridden by the request's.
	base := s.settings.Load().forProvider(req.Provider)
	values := maps.Clone(base.values)
	secret := map[string]bool{}
	for _, k := range base.secretKeys {
		secret[k] = true
	}
	for k, v := range req.Settings {
		values[k] = v
		delete(secret, k)
	}
	for _, k := range req.Secrets {
		secret[k] = true
	}
	view := newScopeView(values, secret)

	scope := "dry-" + uuid.NewString()
	defer s.dry.dropScope(scope)
	for k, v := range req.KV {
		if err := s.dry.kv.Set(ctx, scope, k, v); err != nil {
			return nil, market.Invalid("kv", "%v", err)
		}
	}
	modules := map[string]*activeModule{}
	snap := s.mods.Load()
	maps.Copy(modules, snap.modules)
	if name != "" {
		modules[name] = &activeModule{name: name, version: version, hash: sourceHash(source), source: source}
	}
	resolver := &moduleSnapshot{modules: modules, bundled: s.cfg.Bundled}
	input := req.Input
	if input == nil {
		input = map[string]any{}
	}
	if req.Event != "" {
		input = eventInput(req.Event, input)
	}
	opts := runtime.RunOptions{Timeout: timeout, AllowedHosts: req.AllowHosts, RootCAs: s.cfg.RootCAs,
		Settings: values, SecretKeys: view.secretKeys, KVScope: scope, Resolver: resolver}
	chunk := name
	if chunk == "" {
		chunk = "script"
	}
	rctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	var res *runtime.Result
	if fn == "" {
		res, err = s.dry.engine.Run(rctx, runtime.Script{Name: chunk, Source: source}, input, opts)
	} else {
		res, err = s.dry.engine.Call(rctx, runtime.Script{Name: chunk, Source: source}, fn, input, opts)
	}
	if res == nil && err != nil {
		if errors.Is(err, runtime.ErrBusy) {
			return nil, &market.Error{Kind: market.KindBusy, Message: "dry runs are busy; retry", Err: err}
		}
		var se *runtime.ScriptError
		if errors.As(err, &se) {
			return nil, market.Invalid("source", "%s", se.Error()).WithDetail("line", se.Line)
		}
		return nil, market.Internal(err, "dry run")
	}
	run := RunOf(KindHook, chunk, res, err)
	out := &DryRunResult{OK: err == nil, Error: view.redact(run.Error), ErrorLine: run.ErrorLine, Limit: run.Limit,
		LogsDropped: run.LogsDropped, DurationMs: run.Duration, Modules: run.Modules, Logs: []RunLog{}, KV: map[string]string{}}
	if version > 0 {
		out.Version = fmt.Sprintf("v%d-%s", version, sourceHash(source))
	} else {
		out.Version = sourceHash(source)
	}
	for _, l := range run.Logs {
		l.Message = view.redact(l.Message)
		l.Fields = redactAny(view, l.Fields).(map[string]any)
		out.Logs = append(out.Logs, l)
	}
	if err == nil {
		out.Value = redactAny(view, res.Value)
		if req.Event != "" && isBefore(req.Event) {
			out.Rejected = view.redact(rejection(res.Value, chunk+"."+fn))
		}
	}
	pairs, _ := s.dry.kv.List(ctx, scope, "", runtime.MaxKVList)
	for _, p := range pairs {
		out.KV[p.Key] = view.redact(p.Value)
	}
	return out, nil
}

// dryRunSource finds the module under test: its name, source and
// version (0 for inline source).
func (s *Service) dryRunSource(ctx context.Context, req DryRunRequest) (name, source string, version int, err error) {
	name = req.Module
	if name != "" {
		if err := checkModuleName("module", name); err != nil {
			return "", "", 0, err
		}
	}
	if req.Source != "" {
		if err := CheckSource(cmp.Or(name, "script"), req.Source); err != nil {
			return "", "", 0, err
		}
		return name, req.Source, 0, nil
	}
	if name == "" {
		return "", "", 0, market.Invalid("module", "name a module (or give source)")
	}
	v := req.Version
	if v == 0 {
		a, ok := s.mods.Load().modules[name]
		if !ok {
			return "", "", 0, market.Errorf(market.KindNotFound, "module %q has no active version; name a version", name)
		}
		return name, a.source, a.version, nil
	}
	m, err := s.store.ModuleVersion(ctx, name, v)
	if err != nil {
		return "", "", 0, internal(err, "read module version")
	}
	return name, m.Source, m.Version, nil
}

// dropScope forgets a dry run's kv entries.
func (d *dryRunner) dropScope(scope string) {
	ctx := context.Background()
	for {
		pairs, err := d.kv.List(ctx, scope, "", runtime.MaxKVList)
		if err != nil || len(pairs) == 0 {
			return
		}
		for _, p := range pairs {
			_ = d.kv.Delete(ctx, scope, p.Key)
		}
	}
}

// redactAny redacts secret values from the strings of a converted value
// (a copy when anything changes).
func redactAny(v *scopeView, x any) any {
	if v.redactor == nil {
		return x
	}
	switch t := x.(type) {
	case string:
		return v.redact(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[v.redact(k)] = redactAny(v, e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = redactAny(v, e)
		}
		return out
	}
	return x
}
