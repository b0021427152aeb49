// Package runtime is vmarket's Lua sandbox: pooled gopher-lua states, a
// compiled-script cache, per-run limits and host modules. It knows nothing
// of the marketplace; callers hand it a script, an input table and the
// capabilities a run may use, and get back a result and a run record.
package runtime
