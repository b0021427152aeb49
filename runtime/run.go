package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// run is the state of one script execution on one pooled Lua state. It is
// also the context.Context gopher-lua checks before every VM instruction:
// Done counts instructions and, every checkEvery of them, checks the
// deadline, the caller's context and the memory budget.
type run struct {
	eng    *Engine
	vs     *vmState
	ctx    context.Context // the caller's context
	opts   *RunOptions
	limits *Limits
	pub    Run

	deadline time.Time
	started  time.Time
	env      *lua.LTable
	input    lua.LValue
	loaded   *lua.LTable // per-run package.loaded, created on first use
	pkg      *lua.LTable

	tripped    *LimitError
	afterFuncs []func()

	instructions uint64
	allocs       *atomic.Uint64 // the engine sampler's allocation counter
	allocLimit   uint64         // measure again when *allocs passes this
	allocBase    uint64         // process allocation counter at the last measurement
	estimate     int64          // live-memory estimate at the last measurement
	peak         int64

	logs        []LogLine
	logBytes    int
	logsDropped int
	httpCount   int
	coroutines  int
	modules     []string
	rng         *rand.Rand
	redactor    *strings.Replacer
	logger      *slog.Logger
	scriptName  string

	blockCtx    context.Context // deadline-bound context for blocking host calls
	blockCancel context.CancelFunc
	allow       *allowList      // parsed AllowedHosts, built on first use
	client      *http.Client    // http module client, built on first use
	transport   *http.Transport // its guarded transport, when the engine's is not injected
}

// checkEvery is how many instructions pass between two limit checks; a
// power of two.
const checkEvery = 64

// Deadline implements context.Context.
func (r *run) Deadline() (time.Time, bool) { return r.deadline, true }

// Done implements context.Context. gopher-lua calls it before each VM
// instruction; it counts them and runs the periodic limit checks.
func (r *run) Done() <-chan struct{} {
	r.instructions++
	if r.tripped == nil && (r.instructions&(checkEvery-1) == 0 || r.allocs.Load() > r.allocLimit) {
		r.check()
	}
	return r.vs.done
}

// Err implements context.Context: the limit that stopped the run.
func (r *run) Err() error {
	if r.tripped != nil {
		return r.tripped
	}
	return nil
}

// Value implements context.Context.
func (r *run) Value(key any) any { return r.ctx.Value(key) }

// AfterFunc lets context.WithCancel (used by gopher-lua for coroutine
// threads) hook cancellation without a goroutine per coroutine.
func (r *run) AfterFunc(f func()) func() bool {
	r.afterFuncs = append(r.afterFuncs, f)
	return func() bool { return true }
}

// check runs the periodic checks: deadline, caller cancellation, memory.
func (r *run) check() {
	if !time.Now().Before(r.deadline) {
		r.trip(LimitTimeout, r.timeoutDetail())
		return
	}
	if err := r.ctx.Err(); err != nil {
		r.trip(LimitCanceled, err.Error())
		return
	}
	if r.allocs.Load() > r.allocLimit {
		r.measure(0)
	}
}

func (r *run) timeoutDetail() string {
	return r.deadline.Sub(r.started).Round(time.Millisecond).String()
}

// trip stops the run: every further instruction fails with the limit error
// (the closed done channel), and protected calls re-raise it.
func (r *run) trip(limit, detail string) {
	if r.tripped != nil {
		return
	}
	r.tripped = &LimitError{Limit: limit, Detail: detail}
	r.vs.broken = true
	close(r.vs.done)
	for _, f := range r.afterFuncs {
		f()
	}
	r.afterFuncs = nil
}

// raiseTripped raises the limit error inside the VM.
func (r *run) raiseTripped(L *lua.LState) {
	L.RaiseError("%s", r.tripped.luaMessage())
}

// tripAndRaise trips a limit from a Go function and raises it.
func (r *run) tripAndRaise(L *lua.LState, limit, detail string) {
	r.trip(limit, detail)
	r.raiseTripped(L)
}

// measure runs the memory walker and trips the memory limit when the
// estimate plus extra (bytes about to be allocated) exceeds the budget.
func (r *run) measure(extra int64) {
	r.estimate = r.vs.measure(r)
	// Count from after the walk: the walker's own allocations must not
	// look like the script's, or a big heap would be walked on every
	// check (each walk allocating enough to trigger the next).
	r.allocBase = max(r.allocs.Load(), currentAllocs())
	r.allocLimit = r.allocBase + uint64(max(r.limits.MemoryBytes-r.estimate, r.limits.MemoryBytes/8))
	if r.estimate > r.peak {
		r.peak = r.estimate
	}
	if r.estimate+extra > r.limits.MemoryBytes {
		r.trip(LimitMemory, fmt.Sprintf("estimated %s over the %s budget", formatBytes(r.estimate+extra), formatBytes(r.limits.MemoryBytes)))
	}
}

// reserve is called by Go functions before they build a string or buffer
// of n bytes. It raises the memory limit when n is over the string cap or
// the run's memory estimate cannot take n more bytes.
func (r *run) reserve(L *lua.LState, n int64) {
	if r.tripped != nil {
		r.raiseTripped(L)
	}
	if n > r.limits.MaxStringBytes || n < 0 {
		r.tripAndRaise(L, LimitMemory, fmt.Sprintf("a string of %s over the %s cap", formatBytes(n), formatBytes(r.limits.MaxStringBytes)))
	}
	used := int64(r.allocs.Load()-r.allocBase) + r.estimate
	if n < 1<<16 || used+n <= r.limits.MemoryBytes {
		return
	}
	r.measure(n)
	if r.tripped != nil {
		r.raiseTripped(L)
	}
}

// blocking returns a context bound to the run's deadline for host calls
// that may block (http, kv). It is created on first use.
func (r *run) blocking() context.Context {
	if r.blockCtx == nil {
		r.blockCtx, r.blockCancel = context.WithDeadline(r.ctx, r.deadline)
	}
	return r.blockCtx
}

// random returns the run's private random generator.
func (r *run) random() *rand.Rand {
	if r.rng == nil {
		seed := r.opts.Seed
		if seed == 0 {
			seed = rand.Uint64()
		}
		r.rng = newRNG(seed)
	}
	return r.rng
}

func newRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// redactText replaces secret setting values in s.
func (r *run) redactText(s string) string {
	if r.redactor == nil {
		return s
	}
	return r.redactor.Replace(s)
}

// redactedMark replaces secret values.
const redactedMark = "[REDACTED]"

// minSecretLen is the shortest secret value that is redacted; shorter ones
// would blank out ordinary text.
const minSecretLen = 4

func newRedactor(opts *RunOptions) *strings.Replacer {
	var pairs []string
	for _, k := range opts.SecretKeys {
		if v := opts.Settings[k]; len(v) >= minSecretLen {
			pairs = append(pairs, v, redactedMark)
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return strings.NewReplacer(pairs...)
}

// log captures a log line (capped) and forwards it to the logger.
func (r *run) log(level, msg string, fields map[string]any) {
	msg = r.redactText(msg)
	size := len(msg)
	for k, v := range fields {
		fields[k] = r.redactValue(v)
		size += len(k) + 8
		if s, ok := fields[k].(string); ok {
			size += len(s)
		}
	}
	if len(r.logs) >= r.limits.LogLines || r.logBytes+size > r.limits.LogBytes {
		r.logsDropped++
		return
	}
	r.logBytes += size
	r.logs = append(r.logs, LogLine{Time: time.Now(), Level: level, Message: msg, Fields: fields})
	attrs := make([]slog.Attr, 0, len(fields)+1)
	attrs = append(attrs, slog.String("script", r.scriptName))
	for k, v := range fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	r.logger.LogAttrs(r.ctx, slogLevel(level), msg, attrs...)
}

func (r *run) redactValue(v any) any {
	if r.redactor == nil {
		return v
	}
	switch x := v.(type) {
	case string:
		return r.redactor.Replace(x)
	case map[string]any:
		for k, e := range x {
			x[k] = r.redactValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = r.redactValue(e)
		}
	}
	return v
}

func slogLevel(level string) slog.Level {
	switch level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// loadedTable returns the run's package.loaded.
func (r *run) loadedTable(L *lua.LState) *lua.LTable {
	if r.loaded == nil {
		r.loaded = L.NewTable()
	}
	return r.loaded
}

// packageTable returns the run's `package` table: {loaded = ...}.
func (r *run) packageTable(L *lua.LState) *lua.LTable {
	if r.pkg == nil {
		r.pkg = L.NewTable()
		r.pkg.RawSetString("loaded", r.loadedTable(L))
	}
	return r.pkg
}

// finish releases what the run holds on its state.
func (r *run) finish() {
	if r.blockCancel != nil {
		r.blockCancel()
	}
	if r.transport != nil {
		r.transport.CloseIdleConnections()
	}
	r.afterFuncs = nil
}

// Run is the handle host modules get on the current run (CurrentRun).
type Run struct {
	r *run
}

// CurrentRun returns the run executing on L, or nil outside a run. Host
// module functions use it to reach the run's context, options and log.
func CurrentRun(L *lua.LState) *Run {
	if r, ok := L.Context().(*run); ok {
		return &r.pub
	}
	return nil
}

// Context returns a context that ends at the run's deadline or when the
// caller cancels; pass it to anything that may block.
func (x *Run) Context() context.Context { return x.r.blocking() }

// Options returns the run's options (read-only).
func (x *Run) Options() *RunOptions { return x.r.opts }

// Value returns RunOptions.Values[key].
func (x *Run) Value(key string) any { return x.r.opts.Values[key] }

// Log captures a log line in the run record (level "debug", "info", "warn"
// or "error"), redacted and capped like log.* lines.
func (x *Run) Log(level, msg string, fields map[string]any) { x.r.log(level, msg, fields) }

// HostAllowed reports whether RunOptions.AllowedHosts lets the run reach
// host:port (entries "host" allow any port), for host modules that dial
// themselves (e.g. sftp).
func (x *Run) HostAllowed(host string, port int) bool {
	return x.r.allowList().allows(host, strconv.Itoa(port))
}

// Redact replaces the run's secret setting values in s.
func (x *Run) Redact(s string) string { return x.r.redactText(s) }

// Reserve raises the memory limit in L when the run cannot afford n more
// bytes; call it before building a large string or buffer.
func (x *Run) Reserve(L *lua.LState, n int64) { x.r.reserve(L, n) }

// RaiseError raises a host-module error value {code=..., message=...}
// (see the package README) from module mod. It does not return.
func (x *Run) RaiseError(L *lua.LState, mod, code, msg string) {
	x.r.vs.raise(L, mod, code, msg)
}

// errPosRE splits a gopher-lua error message "chunk:line: message".
var errPosRE = regexp.MustCompile(`^([^\n]*?):(\d+): ((?s).*)$`)

// splitPosition returns the chunk, line and message of a Lua error text.
func splitPosition(msg string) (chunk string, line int, rest string) {
	if m := errPosRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[2])
		return m[1], line, m[3]
	}
	return "", 0, msg
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
