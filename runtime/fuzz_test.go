package runtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzCompile feeds url-encoded text through DecodeScript and Compile: it
// must never panic, and a failure must be a *ScriptError (or a decoding
// error).
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		"return+%7B%7D",
		"local%20x%20%3D%201%0Areturn%20%7Bx%3Dx%7D",
		"local a = 'x' .. 1 .. (f()) .. ...",
		"function f(...) return ... .. 'x' end",
		"\x1bLua",
		"%zz",
		"return {",
		"for i=1,10 do s = s .. i end",
		"goto x ::x::",
		"local t = {[1]=1, x=2, 'a' .. 'b'}",
		string(make([]byte, 64)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, encoded string) {
		src, err := DecodeScript(encoded)
		if err != nil {
			return
		}
		if _, err := Compile("fuzz", src); err != nil {
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *ScriptError", err, err)
			}
		}
	})
}

// FuzzRun runs arbitrary compiled chunks in the sandbox with tight limits:
// the engine must return (a result or an error), never crash.
func FuzzRun(f *testing.F) {
	for _, seed := range []string{
		"return {a = 1}",
		"while true do end",
		"local s = 'x' while true do s = s .. s end",
		"return require('json').decode('[1,2,{}]')",
		"error({})",
		"local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return {t.x}",
	} {
		f.Add(seed)
	}
	e, err := NewEngine(Options{MaxStates: 1, Limits: Limits{Timeout: 50 * time.Millisecond, MemoryBytes: 8 << 20}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	f.Fuzz(func(t *testing.T, src string) {
		res, err := e.Run(context.Background(), Script{Name: "fuzz", Source: src}, nil, RunOptions{})
		if err == nil && res == nil {
			t.Fatal("nil result without error")
		}
	})
}
