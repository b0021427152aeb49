package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Engine runs Lua scripts in a sandbox on a pool of Lua states. It is safe
// for concurrent use. Create it with NewEngine and release it with Close.
type Engine struct {
	opts     Options
	limits   Limits
	cache    *protoCache
	sampler  *allocSampler
	logger   *slog.Logger
	modules  map[string]HostModule
	poolWait time.Duration
	slots    chan *vmState // idle states; nil entries are slots for new states

	closed atomic.Bool
	stats  struct {
		created, discarded, busy atomic.Uint64
	}
}

// Stats are engine counters, for metrics and tests.
type Stats struct {
	// Cache are the compiled-proto cache counters.
	Cache CacheStats
	// StatesCreated and StatesDiscarded count Lua states built and dropped
	// (a state is dropped after a run that hit a limit or panicked);
	// BusyRejections counts runs that failed with ErrBusy.
	StatesCreated, StatesDiscarded, BusyRejections uint64
	// Idle is the number of idle, ready states.
	Idle int
	// MaxStates is the pool size.
	MaxStates int
}

// NewEngine builds an engine and its MinStates Lua states.
func NewEngine(opts Options) (*Engine, error) {
	e := &Engine{
		opts:     opts,
		limits:   opts.Limits.withDefaults(),
		cache:    newProtoCache(opts.CacheSize),
		logger:   opts.Logger,
		poolWait: opts.PoolWait,
	}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	if e.poolWait <= 0 {
		e.poolWait = time.Second
	}
	min, max := opts.MinStates, opts.MaxStates
	if min <= 0 {
		min = 1
	}
	if max <= 0 {
		max = 2 * runtime.GOMAXPROCS(0)
	}
	if max < min {
		max = min
	}
	e.modules = builtinModules()
	for name, m := range opts.Modules {
		e.modules[name] = m
	}
	e.slots = make(chan *vmState, max)
	for i := 0; i < max; i++ {
		if i >= min {
			e.slots <- nil
			continue
		}
		vs, err := e.newState()
		if err != nil {
			e.Close()
			return nil, err
		}
		e.slots <- vs
	}
	e.sampler = newAllocSampler()
	return e, nil
}

func (e *Engine) newState() (*vmState, error) {
	vs, err := newVMState(e)
	if err != nil {
		return nil, err
	}
	e.stats.created.Add(1)
	return vs, nil
}

// Close releases the idle states; runs in flight finish and their states
// are released when they return. Close is idempotent.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	for {
		select {
		case vs := <-e.slots:
			if vs != nil {
				vs.close()
			}
		default:
			if e.sampler != nil {
				e.sampler.close()
			}
			return nil
		}
	}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Cache:           e.cache.snapshot(),
		StatesCreated:   e.stats.created.Load(),
		StatesDiscarded: e.stats.discarded.Load(),
		BusyRejections:  e.stats.busy.Load(),
		Idle:            len(e.slots),
		MaxStates:       cap(e.slots),
	}
}

// Compile compiles source through the engine's cache (keyed by the sha256
// of source) and reports a syntax error as *ScriptError.
func (e *Engine) Compile(name, source string) (*lua.FunctionProto, error) {
	p, _, err := e.cache.get(name, source)
	return p, err
}

// acquire takes a state from the pool, waiting at most PoolWait.
func (e *Engine) acquire(ctx context.Context) (*vmState, error) {
	var vs *vmState
	select {
	case vs = <-e.slots:
	default:
		t := time.NewTimer(e.poolWait)
		defer t.Stop()
		select {
		case vs = <-e.slots:
		case <-ctx.Done():
			return nil, fmt.Errorf("runtime: waiting for a Lua state: %w", ctx.Err())
		case <-t.C:
			e.stats.busy.Add(1)
			return nil, fmt.Errorf("%w (waited %s)", ErrBusy, e.poolWait)
		}
	}
	if e.closed.Load() {
		e.release(vs)
		return nil, ErrClosed
	}
	if vs == nil {
		var err error
		if vs, err = e.newState(); err != nil {
			e.slots <- nil
			return nil, err
		}
	}
	return vs, nil
}

// release returns a state to the pool, or drops it when it is broken or
// the engine is closed.
func (e *Engine) release(vs *vmState) {
	if vs == nil {
		e.slots <- nil
		return
	}
	if vs.broken {
		e.stats.discarded.Add(1)
	}
	if vs.broken || e.closed.Load() {
		vs.close()
		e.slots <- nil
		return
	}
	e.slots <- vs
}

// Run runs script with input (a map[string]any, or any value the README
// table allows; nil is an empty table). The chunk gets input as its first
// vararg and as the global `input`, and must return a table or nil, which
// becomes Result.Value. See Result for what is returned on failure.
func (e *Engine) Run(ctx context.Context, script Script, input any, opts RunOptions) (*Result, error) {
	return e.exec(ctx, script, "", input, opts)
}

// Call loads script as a module chunk (it must return a table of
// functions) and calls its function fn with input as the only argument,
// e.g. a hook's on_paid(event). A missing function fails with
// ErrNoFunction. The function's first return value, converted, is
// Result.Value.
func (e *Engine) Call(ctx context.Context, script Script, fn string, input any, opts RunOptions) (*Result, error) {
	if fn == "" {
		return nil, fmt.Errorf("runtime: Call needs a function name")
	}
	return e.exec(ctx, script, fn, input, opts)
}

func (e *Engine) exec(ctx context.Context, script Script, fn string, input any, opts RunOptions) (*Result, error) {
	if script.Name == "" {
		script.Name = "script"
	}
	proto, hit := script.Proto, false
	if proto == nil {
		var err error
		if proto, hit, err = e.cache.get(script.Name, script.Source); err != nil {
			return nil, err
		}
	}
	vs, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	e.sampler.begin()
	res, err := vs.exec(ctx, proto, script.Name, fn, input, &opts)
	e.sampler.end()
	res.Record.CacheHit = hit
	e.release(vs)
	return res, err
}

// exec runs one script on vs.
func (vs *vmState) exec(ctx context.Context, proto *lua.FunctionProto, name, fnName string, input any, opts *RunOptions) (res *Result, err error) {
	e := vs.eng
	L := vs.L
	timeout := e.limits.Timeout
	if opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	now := time.Now()
	r := &run{
		eng: e, vs: vs, ctx: ctx, opts: opts, limits: &e.limits,
		started: now, deadline: now.Add(timeout),
		allocs:     &e.sampler.value,
		scriptName: name,
		logger:     e.logger,
	}
	if d, ok := ctx.Deadline(); ok && d.Before(r.deadline) {
		r.deadline = d
	}
	if opts.Logger != nil {
		r.logger = opts.Logger
	}
	if len(opts.SecretKeys) > 0 {
		r.redactor = newRedactor(opts)
	}
	r.pub.r = r
	r.allocBase = r.allocs.Load()
	r.allocLimit = r.allocBase + uint64(e.limits.MemoryBytes)
	res = &Result{Record: Record{Script: name, Function: fnName, Started: now}}

	r.env = L.CreateTable(0, 0)
	r.env.Metatable = vs.envMeta
	vs.run = r
	L.SetContext(r)
	defer func() {
		if p := recover(); p != nil { // a bug in a host module; never crash the process
			vs.broken = true
			err = fmt.Errorf("runtime: panic in %s: %v", name, p)
		}
		L.RemoveContext()
		L.SetTop(0)
		vs.run = nil
		r.finish()
		rec := &res.Record
		rec.Duration = time.Since(now)
		rec.Logs, rec.LogsDropped = r.logs, r.logsDropped
		rec.Instructions = int64(r.instructions)
		rec.MemoryPeak = r.peak
		rec.HTTPRequests = r.httpCount
		rec.Modules = r.modules
		if err != nil {
			rec.Error = err
			rec.ErrorText = r.redactText(err.Error())
			var le *LimitError
			if errors.As(err, &le) {
				rec.Limit = le.Limit
			}
		}
	}()

	in, err := vs.toLua(L, input, 0)
	if err != nil {
		return res, fmt.Errorf("runtime: input: %w", err)
	}
	if in == lua.LNil {
		in = L.CreateTable(0, 0)
	}
	r.input = in

	fn := L.NewFunctionFromProto(proto)
	fn.Env = r.env
	L.Push(fn)
	nargs := 1
	if fnName != "" {
		nargs = 0
	} else {
		L.Push(in)
	}
	if perr := L.PCall(nargs, 1, nil); perr != nil {
		return res, vs.runError(r, name, proto.SourceName, perr)
	}
	ret := L.Get(-1)
	L.Pop(1)
	if fnName != "" {
		mod, ok := ret.(*lua.LTable)
		if !ok {
			return res, fmt.Errorf("%w: module %s returned a %s, want a table of functions", ErrResult, name, ret.Type().String())
		}
		f := L.GetField(mod, fnName)
		if f.Type() != lua.LTFunction {
			return res, fmt.Errorf("%w: %s.%s", ErrNoFunction, name, fnName)
		}
		L.Push(f)
		L.Push(in)
		if perr := L.PCall(1, 1, nil); perr != nil {
			return res, vs.runError(r, name, proto.SourceName, perr)
		}
		ret = L.Get(-1)
		L.Pop(1)
	} else if ret.Type() != lua.LTTable && ret.Type() != lua.LTNil {
		return res, fmt.Errorf("%w: %s returned a %s, want a table or nil", ErrResult, name, ret.Type().String())
	}
	if r.tripped != nil {
		return res, r.tripped
	}
	val, cerr := vs.fromLua(ret, e.limits.ResultBytes)
	if cerr != nil {
		if errors.Is(cerr, errTooLarge) {
			le := &LimitError{Limit: LimitResult, Detail: fmt.Sprintf("result over %s", formatBytes(int64(e.limits.ResultBytes)))}
			return res, le
		}
		return res, fmt.Errorf("%s: %w", name, cerr)
	}
	res.Value = val
	return res, nil
}

// runError turns a failed PCall into a *LimitError or *ScriptError.
func (vs *vmState) runError(r *run, name, sourceName string, perr error) error {
	var msg, trace string
	var obj lua.LValue = lua.LString(perr.Error())
	var aerr *lua.ApiError
	if errors.As(perr, &aerr) {
		obj, trace = aerr.Object, aerr.StackTrace
	}
	if s, ok := obj.(lua.LString); ok {
		msg = string(s)
		if r.tripped == nil {
			vs.overflowLimit(r, msg)
		}
	} else if t, ok := obj.(*lua.LTable); ok && t.Metatable == vs.errMeta {
		msg = lua.LVAsString(t.RawGetString("module")) + ": " + lua.LVAsString(t.RawGetString("code")) + ": " + lua.LVAsString(t.RawGetString("message"))
	} else if obj.Type() == lua.LTTable {
		msg = "error object is a table: " + tableSummary(obj.(*lua.LTable))
	} else {
		msg = "error object is a " + obj.Type().String() + ": " + obj.String()
	}
	chunk, line, rest := splitPosition(msg)
	if chunk == sourceName {
		chunk = name
	}
	if r.tripped != nil {
		le := *r.tripped
		le.Chunk, le.Line = chunk, line
		return &le
	}
	if chunk == "" {
		chunk = name
	}
	return &ScriptError{
		Chunk:     chunk,
		Line:      line,
		Message:   r.redactText(rest),
		Traceback: r.redactText(shortTraceback(trace, sourceName, name)),
	}
}

// tableSummary renders a table error object briefly: its message or code
// fields when present.
func tableSummary(t *lua.LTable) string {
	var parts []string
	for _, k := range []string{"code", "message", "error", "msg"} {
		if v := t.RawGetString(k); v != lua.LNil {
			parts = append(parts, k+"="+lua.LVAsString(v))
		}
	}
	if len(parts) == 0 {
		return "{...}"
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// shortTraceback keeps at most 8 frames of a gopher-lua traceback and
// names the main chunk by its script name.
func shortTraceback(trace, sourceName, name string) string {
	if trace == "" {
		return ""
	}
	if sourceName != name {
		trace = strings.ReplaceAll(trace, sourceName+":", name+":")
	}
	lines := strings.Split(strings.TrimSpace(trace), "\n")
	if len(lines) > 9 {
		lines = append(lines[:9], "\t...")
	}
	return strings.Join(lines, "\n")
}
