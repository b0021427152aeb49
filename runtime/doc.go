// Package runtime is vmarket's Lua sandbox: pooled gopher-lua states, a
// compiled-script cache, per-run limits and host modules. It knows nothing
// of the marketplace; callers hand it a script, an input table and the
// capabilities a run may use, and get back a result and a run record.
//
// # Use
//
//	eng, err := runtime.NewEngine(runtime.Options{
//		MinStates: 4, MaxStates: 16,
//		Resolver:  runtime.Chain(operatorModules, runtime.FSResolver(scripts.FS)),
//		KV:        store, // implements runtime.KV
//		Logger:    log,
//	})
//	defer eng.Close()
//	res, err := eng.Run(ctx, runtime.Script{Name: "start", Source: src}, input, runtime.RunOptions{
//		AllowedHosts: []string{"api.example.com"},
//		Settings:     settings, SecretKeys: []string{"api_key"},
//		KVScope:      providerID,
//	})
//	// res.Value is map[string]any / []any / nil; res.Record is the run record
//	// (stored even when err != nil). errors.Is(err, runtime.ErrBusy) → 503;
//	// errors.As(err, &*runtime.LimitError) → a limit; *runtime.ScriptError →
//	// a Lua error with chunk:line.
//
// # Script contract
//
// A chunk receives the input table as its first vararg (`local input = ...`)
// and as the global `input`, and returns a table or nil (Engine.Run).
// Engine.Call loads a module chunk that returns a table of functions and
// calls one by name with the input as its only argument. The Lua-facing
// API (standard library subset, host modules, error values, limits) is
// specified in README.md next to this file.
//
// # Isolation
//
// Every run gets a fresh, empty global table whose metatable (protected)
// falls back to a per-state base table holding the sandboxed standard
// library; the libraries and host modules are read-only proxies (writes,
// rawset, table.insert and setmetatable on them fail), the string type's
// metatable is hidden, and _G, input and package are served per run. So
// nothing a run sets is seen by the next run on the same pooled state,
// while building a run's environment costs two small allocations.
//
// # Limits
//
// The run is the context.Context of its gopher-lua state. gopher-lua calls
// its Done method before every VM instruction; the run counts
// instructions there and checks the deadline and the caller's context every
// 64 instructions and the memory budget when the process allocation
// counter says it may have been reached (see the memory design in
// memory.go). A tripped limit closes the done channel, so every further
// instruction raises it again; pcall, xpcall and coroutine.resume re-raise
// it, so scripts cannot swallow it. Long Go-side calls are bounded by
// size checks before they run (gopher-lua cannot interrupt them), and
// pattern matching (find, match, gmatch, gsub) uses the runtime's own
// matcher, which runs the same checks every few thousand steps. A state
// whose run hit a limit is discarded, not reused.
//
// # Host modules
//
// json, http, crypto, url, time, log, kv and settings are built in (see
// openJSON, openHTTP, ... for examples); Options.Modules registers more,
// written against CurrentRun.
package runtime
