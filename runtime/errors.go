package runtime

import (
	"errors"
	"fmt"
)

// ErrBusy is returned (wrapped) by Engine.Run and Engine.Call when no Lua
// state became free within Options.PoolWait. Servers map it to 503.
var ErrBusy = errors.New("runtime: all Lua states are busy")

// ErrLimit matches every *LimitError with errors.Is.
var ErrLimit = errors.New("runtime: limit exceeded")

// ErrNoFunction is returned (wrapped) by Engine.Call when the module chunk
// does not export the requested function. Hook callers may treat it as
// "no hook".
var ErrNoFunction = errors.New("runtime: no such function")

// ErrClosed is returned by an Engine after Close.
var ErrClosed = errors.New("runtime: engine closed")

// ErrResult is wrapped by errors about a script's return value: a wrong
// type, an unconvertible value, a cycle, or a result over the size cap.
var ErrResult = errors.New("runtime: bad script result")

// Limit names, as found in LimitError.Limit and Record.Limit.
const (
	LimitTimeout      = "timeout"       // wall-clock deadline of the run
	LimitMemory       = "memory"        // estimated live memory, or one string over the cap
	LimitCallDepth    = "call_depth"    // nested calls
	LimitStack        = "stack"         // value-stack slots
	LimitCoroutines   = "coroutines"    // coroutines created by the run
	LimitHTTPRequests = "http_requests" // outbound HTTP requests of the run
	LimitResult       = "result"        // size of the converted result
	LimitCanceled     = "canceled"      // the caller's context was canceled
)

// LimitError reports a run stopped by one of its limits. Scripts cannot
// catch these (pcall re-raises them), so the run always ends with it.
type LimitError struct {
	// Limit is one of the Limit* names.
	Limit string
	// Detail says what was measured, e.g. "64 MiB" or "5s".
	Detail string
	// Chunk and Line locate the instruction that tripped the limit, when
	// known.
	Chunk string
	Line  int
}

// Error implements error as "limit exceeded: name: detail".
func (e *LimitError) Error() string {
	msg := "limit exceeded: " + e.Limit
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Line > 0 {
		msg = fmt.Sprintf("%s:%d: %s", e.Chunk, e.Line, msg)
	}
	return msg
}

// Is reports whether target is ErrLimit, or a *LimitError of the same
// Limit (when target's Limit is set).
func (e *LimitError) Is(target error) bool {
	if target == ErrLimit {
		return true
	}
	t, ok := target.(*LimitError)
	return ok && (t.Limit == "" || t.Limit == e.Limit)
}

// luaMessage is the text raised inside the VM when the limit trips.
func (e *LimitError) luaMessage() string {
	msg := "limit exceeded: " + e.Limit
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}
