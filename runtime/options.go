package runtime

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Limits bounds one run. A zero field takes the default shown.
type Limits struct {
	// Timeout is the wall-clock deadline of a run (5s). Infinite loops are
	// stopped between VM instructions; blocking host calls (http, kv) get
	// the deadline through their context.
	Timeout time.Duration
	// MemoryBytes is the budget of the run's estimated live memory (64 MiB).
	// See the package documentation for how it is measured.
	MemoryBytes int64
	// MaxStringBytes caps any single string a script builds with `..`,
	// string.rep/format/gsub, table.concat or a host module (16 MiB, at
	// most MemoryBytes).
	MaxStringBytes int64
	// CallDepth caps nested calls, Lua and Go (200).
	CallDepth int
	// StackSlots caps the value stack of each coroutine (8192).
	StackSlots int
	// Coroutines caps the coroutines a run may create (256).
	Coroutines int
	// HTTPRequests caps the outbound requests of a run (32).
	HTTPRequests int
	// HTTPBodyBytes caps an HTTP response body (8 MiB).
	HTTPBodyBytes int64
	// LogLines and LogBytes cap the log captured in the record (200 lines,
	// 64 KiB); more lines are dropped and counted.
	LogLines int
	LogBytes int
	// ResultBytes caps the converted result, measured as the size of its
	// JSON encoding (1 MiB).
	ResultBytes int
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		Timeout:        5 * time.Second,
		MemoryBytes:    64 << 20,
		MaxStringBytes: 16 << 20,
		CallDepth:      200,
		StackSlots:     8192,
		Coroutines:     256,
		HTTPRequests:   32,
		HTTPBodyBytes:  8 << 20,
		LogLines:       200,
		LogBytes:       64 << 10,
		ResultBytes:    1 << 20,
	}
}

// withDefaults fills zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = d.MaxStringBytes
	}
	if l.MaxStringBytes > l.MemoryBytes {
		l.MaxStringBytes = l.MemoryBytes
	}
	if l.CallDepth <= 0 {
		l.CallDepth = d.CallDepth
	}
	if l.StackSlots <= 0 {
		l.StackSlots = d.StackSlots
	}
	if l.StackSlots > maxStackSlots {
		l.StackSlots = maxStackSlots
	}
	if l.Coroutines <= 0 {
		l.Coroutines = d.Coroutines
	}
	if l.HTTPRequests <= 0 {
		l.HTTPRequests = d.HTTPRequests
	}
	if l.HTTPBodyBytes <= 0 {
		l.HTTPBodyBytes = d.HTTPBodyBytes
	}
	if l.LogLines <= 0 {
		l.LogLines = d.LogLines
	}
	if l.LogBytes <= 0 {
		l.LogBytes = d.LogBytes
	}
	if l.ResultBytes <= 0 {
		l.ResultBytes = d.ResultBytes
	}
	return l
}

// maxStackSlots is the largest value stack the memory walker can see whole
// (gopher-lua reaches at most 9999 slots below the top through its API).
const maxStackSlots = 9000

// Options configures an Engine. The zero value is usable.
type Options struct {
	// MinStates Lua states are created up front (1); at most MaxStates
	// exist at once (2 × GOMAXPROCS, at least MinStates), like Nakama's
	// lua_min_count and lua_max_count.
	MinStates int
	MaxStates int
	// PoolWait bounds how long a run waits for a free state before it fails
	// with ErrBusy (1s).
	PoolWait time.Duration
	// CacheSize bounds the compiled-proto cache, in distinct scripts
	// (1024); the least recently used is evicted.
	CacheSize int
	// Limits are the default limits of every run; RunOptions may lower or
	// raise Timeout per run.
	Limits Limits
	// Resolver finds Lua modules for require; nil means none. Use Chain to
	// layer operator modules in front of bundled ones (FSResolver).
	Resolver ModuleResolver
	// Modules adds Go host modules by require name (e.g. "sftp"). A name
	// here replaces a built-in module of the same name.
	Modules map[string]HostModule
	// KV backs the kv module; nil leaves kv unconfigured (scripts get
	// not_allowed).
	KV KV
	// Transport is the base HTTP transport of the http module; nil builds
	// one that dials only allowed hosts (see RunOptions.AllowedHosts). A
	// custom transport (tests) still gets the allow-list checked on every
	// request and redirect, but its dialing is its own.
	Transport http.RoundTripper
	// Logger receives script log lines and engine events (slog.Default()).
	Logger *slog.Logger
}

// RunOptions are the capabilities and settings of one run.
type RunOptions struct {
	// Timeout overrides Limits.Timeout for this run when > 0.
	Timeout time.Duration
	// AllowedHosts are the hosts the http module may reach: "host" (any
	// port) or "host:port" entries, e.g. the service type's apiHost plus
	// the operator allowlist.
	AllowedHosts []string
	// RootCAs are extra PEM certificates trusted for TLS, in addition to the
	// system roots (for private endpoints and test fakes).
	RootCAs []byte
	// Settings are what settings.get returns; SecretKeys names the settings
	// whose values are redacted from logs, errors and the record.
	Settings   map[string]string
	SecretKeys []string
	// KVScope scopes the kv module (e.g. the provider id); empty leaves kv
	// unconfigured for the run.
	KVScope string
	// Resolver, when set, replaces Options.Resolver for this run.
	Resolver ModuleResolver
	// Logger, when set, receives this run's log lines instead of
	// Options.Logger (e.g. a logger with order attributes).
	Logger *slog.Logger
	// Seed, when non-zero, seeds math.random for a reproducible run;
	// otherwise the seed is random.
	Seed uint64
	// Values carries configuration for extra host modules, read with
	// Run.Value.
	Values map[string]any
}

// Script is a Lua chunk to run: Source (decoded Lua text, compiled through
// the engine's cache) or Proto (from Compile). Name is the chunk name used
// in error positions ("start", "stop", ...).
type Script struct {
	Name   string
	Source string
	Proto  *lua.FunctionProto
}

// Result is the outcome of a run. Engine.Run and Engine.Call return a
// non-nil Result whenever a Lua state was acquired, also with an error, so
// the record can be stored.
type Result struct {
	// Value is the converted return value: for Run a map[string]any, a
	// []any or nil; for Call any converted value.
	Value any
	// Record describes the run.
	Record Record
}

// Map returns Value as a map, or nil when it is not one.
func (r *Result) Map() map[string]any {
	m, _ := r.Value.(map[string]any)
	return m
}

// Record is the structured account of one run, safe to store and show:
// secret setting values are redacted from every field.
type Record struct {
	// Script is the chunk name.
	Script string
	// Function is the called function for Engine.Call, else empty.
	Function string
	Started  time.Time
	Duration time.Duration
	// Logs are the captured log lines; LogsDropped counts lines over the
	// cap.
	Logs        []LogLine
	LogsDropped int
	// Error is the failure, nil on success: a *ScriptError for script
	// errors, a *LimitError when a limit stopped the run, or another error.
	Error error `json:"-"`
	// ErrorText is Error's text (for storage).
	ErrorText string `json:",omitempty"`
	// Limit names the limit that stopped the run, if any.
	Limit string `json:",omitempty"`
	// Instructions is the number of VM instructions executed (approximate:
	// counted by the context check, which gopher-lua runs per instruction).
	Instructions int64
	// MemoryPeak is the largest memory estimate measured (0 when the run
	// was too small to need a measurement).
	MemoryPeak int64
	// HTTPRequests counts outbound requests.
	HTTPRequests int
	// CacheHit tells whether the main chunk came from the proto cache.
	CacheHit bool
	// Modules lists the Lua modules the run required, as "name@version".
	Modules []string `json:",omitempty"`
}

// LogLine is one line a script logged.
type LogLine struct {
	Time    time.Time
	Level   string // "debug", "info", "warn", "error"
	Message string
	Fields  map[string]any `json:",omitempty"`
}

// HostModule is a Go module that scripts load with require(name),
// registered through Options.Modules.
//
// Open builds the module's table once per pooled Lua state; the engine
// wraps it read-only. Its functions find the current run with
// CurrentRun(L) and raise errors with (*Run).RaiseError. Example:
//
//	mods := map[string]runtime.HostModule{
//		"greet": runtime.HostModuleFunc(func(L *lua.LState) *lua.LTable {
//			t := L.NewTable()
//			t.RawSetString("hello", L.NewFunction(func(L *lua.LState) int {
//				run := runtime.CurrentRun(L)
//				run.Log(L, "info", "greeting", nil)
//				L.Push(lua.LString("hello " + L.CheckString(1)))
//				return 1
//			}))
//			return t
//		}),
//	}
type HostModule interface {
	Open(L *lua.LState) *lua.LTable
}

// HostModuleFunc adapts a function to HostModule.
type HostModuleFunc func(L *lua.LState) *lua.LTable

// Open calls f.
func (f HostModuleFunc) Open(L *lua.LState) *lua.LTable { return f(L) }

var _ context.Context = (*run)(nil)
