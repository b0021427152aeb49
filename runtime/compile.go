package runtime

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
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

// concatMethod is the hidden string method that every `..` of a compiled
// chunk is rewritten to call; it is not a valid Lua identifier, so source
// code cannot name it. See Compile.
const concatMethod = "\x00concat"

// Compile parses and compiles Lua source into a FunctionProto. Binary chunks
// are refused. A syntax error comes back as *ScriptError with its line.
//
// The proto is meant for an Engine: every `..` expression is compiled as a
// call of a hidden, size-checked concatenation method of the string type
// (`("")["\0concat"](a, b, ...)`), so that a script cannot build a string
// past the memory limit with a single VM instruction. Such a proto still
// runs on a plain gopher-lua state only if that method is provided.
func Compile(chunkName, source string) (*lua.FunctionProto, error) {
	if strings.HasPrefix(source, "\x1bLua") {
		return nil, &ScriptError{Chunk: chunkName, Message: "binary chunks are not allowed"}
	}
	chunk, err := parse.Parse(strings.NewReader(source), chunkName)
	if err != nil {
		return nil, syntaxError(chunkName, err)
	}
	rewriteStmts(chunk)
	proto, err := compileChunk(chunk, chunkName)
	if err != nil {
		return nil, syntaxError(chunkName, err)
	}
	return proto, nil
}

// compileChunk runs the gopher-lua compiler, turning a compiler panic (it
// has a few on pathological input) into an error.
func compileChunk(chunk []ast.Stmt, chunkName string) (proto *lua.FunctionProto, err error) {
	defer func() {
		if r := recover(); r != nil {
			proto, err = nil, fmt.Errorf("compile: %v", r)
		}
	}()
	return lua.Compile(chunk, chunkName)
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

// rewriteStmts replaces, in place, every string concatenation in stmts by a
// call of the checked concatenation method (see Compile).
func rewriteStmts(stmts []ast.Stmt) {
	for _, st := range stmts {
		switch s := st.(type) {
		case *ast.AssignStmt:
			rewriteExprs(s.Lhs)
			rewriteExprs(s.Rhs)
		case *ast.LocalAssignStmt:
			rewriteExprs(s.Exprs)
		case *ast.FuncCallStmt:
			s.Expr = rewriteExpr(s.Expr)
		case *ast.DoBlockStmt:
			rewriteStmts(s.Stmts)
		case *ast.WhileStmt:
			s.Condition = rewriteExpr(s.Condition)
			rewriteStmts(s.Stmts)
		case *ast.RepeatStmt:
			s.Condition = rewriteExpr(s.Condition)
			rewriteStmts(s.Stmts)
		case *ast.IfStmt:
			s.Condition = rewriteExpr(s.Condition)
			rewriteStmts(s.Then)
			rewriteStmts(s.Else)
		case *ast.NumberForStmt:
			s.Init = rewriteExpr(s.Init)
			s.Limit = rewriteExpr(s.Limit)
			s.Step = rewriteExpr(s.Step)
			rewriteStmts(s.Stmts)
		case *ast.GenericForStmt:
			rewriteExprs(s.Exprs)
			rewriteStmts(s.Stmts)
		case *ast.FuncDefStmt:
			if s.Name != nil {
				s.Name.Func = rewriteExpr(s.Name.Func)
				s.Name.Receiver = rewriteExpr(s.Name.Receiver)
			}
			rewriteStmts(s.Func.Stmts)
		case *ast.ReturnStmt:
			rewriteExprs(s.Exprs)
		}
	}
}

func rewriteExprs(exprs []ast.Expr) {
	for i, e := range exprs {
		exprs[i] = rewriteExpr(e)
	}
}

// rewriteExpr returns expr with concatenations rewritten. A chain a..b..c
// becomes one call with three arguments; a chain of string literals only is
// folded at compile time.
func rewriteExpr(expr ast.Expr) ast.Expr {
	switch e := expr.(type) {
	case nil:
		return nil
	case *ast.StringConcatOpExpr:
		var operands []ast.Expr
		flattenConcat(e, &operands)
		rewriteExprs(operands)
		for _, op := range operands {
			// As call arguments, a trailing call or `...` would expand to
			// all its values; an operand of `..` is truncated to one.
			switch o := op.(type) {
			case *ast.FuncCallExpr:
				o.AdjustRet = true
			case *ast.Comma3Expr:
				o.AdjustRet = true
			}
		}
		if folded, ok := foldStrings(operands); ok {
			s := &ast.StringExpr{Value: folded}
			s.SetLine(e.Line())
			s.SetLastLine(e.LastLine())
			return s
		}
		recv := &ast.StringExpr{Value: ""}
		recv.SetLine(e.Line())
		recv.SetLastLine(e.Line())
		call := &ast.FuncCallExpr{Receiver: recv, Method: concatMethod, Args: operands}
		call.SetLine(e.Line())
		call.SetLastLine(e.LastLine())
		return call
	case *ast.AttrGetExpr:
		e.Object = rewriteExpr(e.Object)
		e.Key = rewriteExpr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			f.Key = rewriteExpr(f.Key)
			f.Value = rewriteExpr(f.Value)
		}
	case *ast.FuncCallExpr:
		e.Func = rewriteExpr(e.Func)
		e.Receiver = rewriteExpr(e.Receiver)
		rewriteExprs(e.Args)
	case *ast.LogicalOpExpr:
		e.Lhs = rewriteExpr(e.Lhs)
		e.Rhs = rewriteExpr(e.Rhs)
	case *ast.RelationalOpExpr:
		e.Lhs = rewriteExpr(e.Lhs)
		e.Rhs = rewriteExpr(e.Rhs)
	case *ast.ArithmeticOpExpr:
		e.Lhs = rewriteExpr(e.Lhs)
		e.Rhs = rewriteExpr(e.Rhs)
	case *ast.UnaryMinusOpExpr:
		e.Expr = rewriteExpr(e.Expr)
	case *ast.UnaryNotOpExpr:
		e.Expr = rewriteExpr(e.Expr)
	case *ast.UnaryLenOpExpr:
		e.Expr = rewriteExpr(e.Expr)
	case *ast.FunctionExpr:
		rewriteStmts(e.Stmts)
	}
	return expr
}

// flattenConcat collects the operands of a right-associative concat chain.
func flattenConcat(e ast.Expr, out *[]ast.Expr) {
	if c, ok := e.(*ast.StringConcatOpExpr); ok {
		flattenConcat(c.Lhs, out)
		flattenConcat(c.Rhs, out)
		return
	}
	*out = append(*out, e)
}

func foldStrings(operands []ast.Expr) (string, bool) {
	var b strings.Builder
	for _, op := range operands {
		s, ok := op.(*ast.StringExpr)
		if !ok {
			return "", false
		}
		b.WriteString(s.Value)
	}
	return b.String(), true
}
