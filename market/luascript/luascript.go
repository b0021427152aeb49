// Package luascript connects the market to the Lua runtime: it compiles
// catalog scripts at upload and (with the lifecycle worker) turns orders
// into script inputs and script results back into market values.
package luascript

import (
	"errors"
	"strings"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// Compiler implements market.ScriptCompiler with the runtime's decoder and
// gopher-lua's compiler.
type Compiler struct{}

// CheckScript decodes an url-encoded script and compiles it; a syntax
// error comes back as *market.ScriptError with its line.
func (Compiler) CheckScript(chunk, encoded string) (string, error) {
	src, err := runtime.DecodeScript(encoded)
	if err != nil {
		return "", &market.ScriptError{Message: err.Error()}
	}
	if _, err := runtime.Compile(chunk, src); err != nil {
		var se *runtime.ScriptError
		if errors.As(err, &se) {
			line, msg := se.Line, se.Message
			if line < 0 {
				// gopher-lua reports errors at the end of the source
				// with line -1: name the last line, as Lua does.
				line = 1 + strings.Count(src, "\n")
				msg += " at end of script"
			}
			return "", &market.ScriptError{Line: line, Message: msg}
		}
		return "", &market.ScriptError{Message: err.Error()}
	}
	return src, nil
}
