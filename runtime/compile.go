package runtime

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// ScriptError is a Lua script failure with its position: a syntax error at
// compile time or a runtime error. Line is 0 when unknown.
type ScriptError struct {
	// Chunk is the script's name as given to Compile (e.g. "start").
	Chunk string
	// Line is the 1-based source line of the failure, 0 when unknown.
	Line int
	// Message is the error text without the chunk:line prefix.
	Message string
	// Traceback is a short Lua stack trace for runtime errors.
	Traceback string
}

// Error implements error as "chunk:line: message".
func (e *ScriptError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Chunk, e.Line, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Chunk, e.Message)
}

// DecodeScript turns a url-encoded script, as the catalog API carries it,
// into Lua source with query-unescape rules ('+' is a space).
func DecodeScript(encoded string) (string, error) {
	src, err := url.QueryUnescape(encoded)
	if err != nil {
		return "", fmt.Errorf("script is not valid url-encoding: %w", err)
	}
	return src, nil
}

// EncodeScript is the inverse of DecodeScript: it url-encodes Lua source
// for the catalog API.
func EncodeScript(source string) string {
	return url.QueryEscape(source)
}

// parseLineRE finds the line number in gopher-lua parser messages, which
// read like "<string> line:3(column:7) near 'x':   syntax error".
var parseLineRE = regexp.MustCompile(`line:(\d+)`)

// Compile parses and compiles Lua source into a FunctionProto. Binary chunks
// are refused. A syntax error comes back as *ScriptError with its line.
func Compile(chunkName, source string) (*lua.FunctionProto, error) {
	if strings.HasPrefix(source, "\x1bLua") {
		return nil, &ScriptError{Chunk: chunkName, Message: "binary chunks are not allowed"}
	}
	chunk, err := parse.Parse(strings.NewReader(source), chunkName)
	if err != nil {
		return nil, syntaxError(chunkName, err)
	}
	proto, err := lua.Compile(chunk, chunkName)
	if err != nil {
		return nil, syntaxError(chunkName, err)
	}
	return proto, nil
}

func syntaxError(chunkName string, err error) *ScriptError {
	se := &ScriptError{Chunk: chunkName, Message: strings.TrimSpace(err.Error())}
	var perr *parse.Error
	if errors.As(err, &perr) {
		se.Line = perr.Pos.Line
		se.Message = strings.TrimSpace(perr.Message)
		if perr.Token != "" {
			se.Message = fmt.Sprintf("%s near '%s'", se.Message, perr.Token)
		}
		return se
	}
	var lerr *lua.CompileError
	if errors.As(err, &lerr) {
		se.Line = lerr.Line
		se.Message = strings.TrimSpace(lerr.Message)
		return se
	}
	if m := parseLineRE.FindStringSubmatch(se.Message); m != nil {
		se.Line, _ = strconv.Atoi(m[1])
	}
	return se
}
