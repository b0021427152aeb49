package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
	"github.com/yuin/gopher-lua/pm"
)

// The conformance tests run the same Lua probes in two plain gopher-lua
// states: one with the stock string library (pm, the oracle) and one whose
// find, match, gmatch and gsub are the sandbox's (pattern.go). Where
// gopher-lua differs from Lua 5.1, the expected results are written out
// (lua51Cases); when a Lua 5.1 interpreter is installed (lua5.1), every
// case is also checked against it.

// patternPrelude defines the probes. run(fn, s, p, ...) returns one line:
// the results of string[fn](s, p, ...) (strings quoted, bytes escaped), the
// list of gmatch iterations, or "error: <message>".
const patternPrelude = `
local function q(s)
  local t = {}
  for i = 1, #s do
    local b = s:byte(i)
    if b < 32 or b > 126 or b == 34 or b == 92 then t[#t + 1] = "\\" .. b else t[#t + 1] = string.char(b) end
  end
  return '"' .. table.concat(t) .. '"'
end
function show(...)
  local n = select('#', ...)
  if n == 0 then return "nil" end
  local out = {}
  for i = 1, n do
    local v = select(i, ...)
    if type(v) == "string" then out[i] = q(v) else out[i] = tostring(v) end
  end
  return table.concat(out, ",")
end
function gm(s, p)
  local f, st, ctl = string.gmatch(s, p)
  local out = {}
  for i = 1, 100 do
    local r = show(f(st, ctl))
    if r == "nil" then break end
    out[#out + 1] = "{" .. r .. "}"
  end
  return table.concat(out, " ")
end
repl_f = function(...)
  local t = {}
  for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end
  return "<" .. table.concat(t, "|") .. ">"
end
repl_t = setmetatable({}, {__index = function(t, k)
  if k == "b" then return false end
  return "<" .. type(k) .. ":" .. tostring(k) .. ">"
end})
function run(fn, s, p, ...)
  local n, args = select('#', ...), {...}
  local ok, r = pcall(function()
    if fn == "gmatch" then return gm(s, p) end
    return show(string[fn](s, p, unpack(args, 1, n)))
  end)
  if ok then return r end
  return "error: " .. tostring(r)
end
`

// patCase is one probe: run(fn, s, p, args...).
type patCase struct {
	fn   string // find, match, gmatch or gsub
	s, p string
	args string // extra arguments as Lua source, e.g. `3, true` or `repl_f, 2`
	want string // expected run result; "error" for any error
}

func (c patCase) call() string {
	args := ""
	if c.args != "" {
		args = ", " + c.args
	}
	return fmt.Sprintf("run(%q, S, P%s)", c.fn, args)
}

func (c patCase) String() string {
	args := ""
	if c.args != "" {
		args = ", " + c.args
	}
	return fmt.Sprintf("string.%s(%q, %q%s)", c.fn, c.s, c.p, args)
}

// sameResult compares two run results; errors match any error.
func sameResult(a, b string) bool {
	if strings.HasPrefix(a, "error") || strings.HasPrefix(b, "error") {
		return strings.HasPrefix(a, "error") && strings.HasPrefix(b, "error")
	}
	return a == b
}

// patternEvaluator runs probes in one plain Lua state.
type patternEvaluator struct {
	mu     sync.Mutex
	L      *lua.LState
	protos map[string]*lua.FunctionProto
}

func newPatternEvaluator(t testing.TB, ours bool) *patternEvaluator {
	t.Helper()
	L := lua.NewState()
	t.Cleanup(L.Close)
	if ours {
		vs := &vmState{L: L} // no run: no limits
		str := L.GetGlobal("string").(*lua.LTable)
		str.RawSetString("find", L.NewFunction(vs.strFind))
		str.RawSetString("match", L.NewFunction(vs.strMatch))
		str.RawSetString("gmatch", L.NewFunction(vs.strGmatch))
		str.RawSetString("gsub", L.NewFunction(vs.strGsub))
	}
	if err := L.DoString(patternPrelude); err != nil {
		t.Fatal(err)
	}
	return &patternEvaluator{L: L, protos: map[string]*lua.FunctionProto{}}
}

func (ev *patternEvaluator) eval(t testing.TB, c patCase) string {
	t.Helper()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	L := ev.L
	src := "return " + c.call()
	proto := ev.protos[src]
	if proto == nil {
		chunk, err := parse.Parse(strings.NewReader(src), "probe")
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if proto, err = lua.Compile(chunk, "probe"); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		ev.protos[src] = proto
	}
	L.SetGlobal("S", lua.LString(c.s))
	L.SetGlobal("P", lua.LString(c.p))
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 1, nil); err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	r := lua.LVAsString(L.Get(-1))
	L.SetTop(0)
	return r
}

// checkOurs evaluates c with our functions and fails on a Go panic turned
// into a Lua error.
func checkOurs(t testing.TB, ours *patternEvaluator, c patCase) string {
	t.Helper()
	got := ours.eval(t, c)
	if strings.Contains(got, "runtime error") || strings.Contains(got, "goroutine") {
		t.Fatalf("%v: Go panic: %s", c, got)
	}
	return got
}

// Patterns and subjects of the cross-product conformance table; all are
// in the part of the language where gopher-lua agrees with Lua 5.1.
var (
	crossPatterns = []string{
		// empty pattern, literals (find does a plain search)
		"", "a", "abc", "b", "o w", "x y",
		// classes and their complements
		".", ".+", "%a", "%a+", "%A+", "%c", "%C+", "%d+", "%D+", "%l+", "%L+",
		"%p", "%p+", "%P+", "%s+", "%S+", "%u+", "%U+", "%w+", "%W+", "%x+", "%X+",
		"%z", "%Z+", "%.", "%%", "%]", "%q",
		// sets
		"[abc]+", "[^abc]+", "[a-f]+", "[^a-f]+", "[%a_][%w_]*", "[%d%.]+", "[]]", "[^]]+",
		"[a-]+", "[-a]+", "[%-x]+", "[%]%[]+", "[.]", "[%%]", "[^%s]+", "[A-Z][a-z]*",
		"[%z]", "[^%z]+", "[%p%s]+", "[]-a]+", "[--a]+",
		// quantifiers
		"a*", "a+", "a-", "a?", "a*b", "a-b", ".-b", ".*b", "(.-)%s", "x?y?z?", "%d?%d?%d",
		"[0-9]+%.?[0-9]*", "a-$", "a**", "a+?", "a-+", "%a+-", "*", "+a", "-", "?",
		// anchors
		"^a", "^a*", "^$", "$", "a$", "^(.-)$", "^%s*(.-)%s*$", "b^", "x$y", "^^", "^%w+$", "%$",
		// captures, position captures
		"(a)", "(a*(.)%w(%s*))", "()", "()a()", "(%w+)=(%w+)", "((a)(b))", "(h)(e)(l)(l)(o)",
		"(%a+)%s*()", "()(%d+)()", "(a)*", "()-", "(.)(.)",
		// back-references
		"(a)%1", "(%w)%1", "([\"'])(.-)%1", "(.)(.)%2%1", "(%a+) %1", "(a*)%1b",
		// balanced matches
		"%b()", "%b[]", "%b\"\"", "%bxy", "(%b())", "%b()%b()", "%b()*", "f%b()",
		// escaped magic characters
		"%(", "%)", "%[", "%*", "%+", "%-", "%?", "%^", "%.+", "%(%w*%)",
		// mixtures
		"(%w+)%s*=%s*(%w+)", "%s*(%S+)%s*", "[%w%.]+@[%w%.]+", "(%d+)%.(%d+)", "%f", "e.-o",
	}
	crossSubjects = []string{
		"", "a", "abc", "aaa", "aab", "hello world", "  trim me  ", "key = value, k2=v2",
		"THE (quick) [brown] fox", "f(a(b)c)d", "x=1.5e3; y=-2", "a\x00b\tc\n",
		"\x80\xff high bytes", "'quoted' \"dq\"", "abba cddc", "aXbXcX", "123abc456",
		"a.b%c]d-e", "user@example.com", "(a)*+?^$x",
	}
)

// crossCases is the pattern × subject conformance table.
func crossCases() []patCase {
	var cases []patCase
	for _, p := range crossPatterns {
		if p == "%f" { // %f without a set is an error in Lua 5.1, not in gopher-lua
			continue
		}
		for _, s := range crossSubjects {
			cases = append(cases,
				patCase{fn: "find", s: s, p: p},
				patCase{fn: "match", s: s, p: p},
				patCase{fn: "gsub", s: s, p: p, args: `"[%0|%1]"`},
				patCase{fn: "gsub", s: s, p: p, args: `repl_f`},
				patCase{fn: "gsub", s: s, p: p, args: `repl_t, 2`},
			)
			if !strings.HasPrefix(p, "^") { // gopher-lua anchors gmatch
				cases = append(cases, patCase{fn: "gmatch", s: s, p: p})
			}
		}
	}
	return cases
}

// oracleCases are explicit calls where gopher-lua agrees with Lua 5.1:
// init and plain arguments, gsub counts, replacement forms.
var oracleCases = []patCase{
	{fn: "find", s: "hello", p: "l", args: "1"},
	{fn: "find", s: "hello", p: "l", args: "4"},
	{fn: "find", s: "hello", p: "l", args: "5"},
	{fn: "find", s: "hello", p: "l", args: "6"},
	{fn: "find", s: "hello", p: "l", args: "0"},
	{fn: "find", s: "hello", p: "l", args: "-1"},
	{fn: "find", s: "hello", p: "l", args: "-2"},
	{fn: "find", s: "hello", p: "l", args: "-5"},
	{fn: "find", s: "hello", p: "l", args: "-100"},
	{fn: "find", s: "hello", p: "l+", args: "-3"},
	{fn: "find", s: "hello", p: "^l", args: "3"},
	{fn: "find", s: "hello", p: "^l", args: "-2"},
	{fn: "find", s: "hello", p: "o$", args: "-1"},
	{fn: "find", s: "hello", p: "()", args: "6"},
	{fn: "find", s: "hello", p: "x*", args: "6"},
	{fn: "find", s: "hello", p: "", args: "1"},
	{fn: "find", s: "", p: "", args: "1"},
	{fn: "find", s: "a.b", p: ".", args: "1, true"},
	{fn: "find", s: "a.b", p: ".", args: "nil, true"},
	{fn: "find", s: "a.b", p: ".", args: "3, true"},
	{fn: "find", s: "a.b", p: ".", args: "1, false"},
	{fn: "find", s: "a%b(c", p: "%b(", args: "1, true"},
	{fn: "find", s: "a%b(c", p: "(", args: "-2, 1"},
	{fn: "find", s: "a+b", p: "+", args: "1"},
	{fn: "find", s: "a[b", p: "[b", args: "1, true"},
	{fn: "find", s: "abcabc", p: "(b)(c)", args: "3"},
	{fn: "match", s: "hello", p: "l+", args: "1"},
	{fn: "match", s: "hello", p: "l+", args: "4"},
	{fn: "match", s: "hello", p: ".", args: "-1"},
	{fn: "match", s: "hello", p: ".", args: "-10"},
	{fn: "match", s: "hello", p: "^h", args: "2"},
	{fn: "match", s: "hello", p: "()", args: "6"},
	{fn: "match", s: "hello", p: "(h)(e)", args: "0"},
	{fn: "match", s: "2024-05-01T12:30:00Z", p: "^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$"},
	{fn: "match", s: "  padded  ", p: "^%s*(.-)%s*$"},
	{fn: "match", s: "key=val", p: "^(%w+)=(%w*)$"},
	{fn: "match", s: "key=", p: "^(%w+)=(%w*)$"},
	{fn: "match", s: "THE (quick) fox", p: "%((%a+)%)"},
	{fn: "match", s: "[[long]]", p: "%[(=*)%[(.-)%]%1%]"},
	{fn: "gsub", s: "hello world", p: "o", args: `"0"`},
	{fn: "gsub", s: "hello world", p: "o", args: `"0", 1`},
	{fn: "gsub", s: "hello world", p: "o", args: `"0", 2`},
	{fn: "gsub", s: "hello world", p: "o", args: `"0", 3`},
	{fn: "gsub", s: "hello world", p: "(o)", args: `"%1%1"`},
	{fn: "gsub", s: "hello world", p: "%w+", args: `"%0 %0"`},
	{fn: "gsub", s: "hello world", p: "(%w+) (%w+)", args: `"%2 %1"`},
	{fn: "gsub", s: "hello", p: "", args: `"-"`},
	{fn: "gsub", s: "hello", p: "x*", args: `"-"`},
	{fn: "gsub", s: "hello", p: "l*", args: `"-"`},
	{fn: "gsub", s: "abc", p: "%w*", args: `"x"`},
	{fn: "gsub", s: "abc", p: "^", args: `">"`},
	{fn: "gsub", s: "abc", p: "$", args: `"<"`},
	{fn: "gsub", s: "abc", p: "^a", args: `"x"`},
	{fn: "gsub", s: "aaa", p: "^a", args: `"x"`},
	{fn: "gsub", s: "abc", p: "()", args: `"%1"`},
	{fn: "gsub", s: "abc", p: "%w", args: `"%%"`},
	{fn: "gsub", s: "abc", p: "b", args: `"%1"`},
	{fn: "gsub", s: "abc", p: "b", args: `"%2"`},
	{fn: "gsub", s: "abc", p: "(b)", args: `"%2"`},
	{fn: "gsub", s: "abc", p: "%w", args: `{a = 1.5, b = false}`},
	{fn: "gsub", s: "abc", p: "%w", args: `function(c) if c == "b" then return nil end return c:upper() end`},
	{fn: "gsub", s: "abc", p: "%w", args: `function(c) return 7 end`},
	{fn: "gsub", s: "abc", p: "(%w)()", args: `function(c, p) return c .. p end`},
	{fn: "gsub", s: "abc", p: "%w", args: `nil`},
	{fn: "gsub", s: "x = 1, y = 2", p: "(%w+) = (%w+)", args: `"%2 = %1"`},
	{fn: "gsub", s: "$name is $age", p: "%$(%w+)", args: `{name = "bob", age = 42}`},
	{fn: "gsub", s: "abc", p: "", args: `repl_f, 2`},
	{fn: "gmatch", s: "one two  three", p: "%a+"},
	{fn: "gmatch", s: "k1=v1, k2=v2", p: "(%w+)=(%w+)"},
	{fn: "gmatch", s: "abc", p: ""},
	{fn: "gmatch", s: "abc", p: "()"},
	{fn: "gmatch", s: "abc", p: "%w*"},
	{fn: "gmatch", s: "a,b,,c", p: "([^,]*)"},
}

// lua51Cases are where gopher-lua's stdlib differs from Lua 5.1; the
// expected results are Lua 5.1.5's (see TestPatternLua51Reference).
var lua51Cases = []patCase{
	// init beyond the subject is clamped to its end
	{fn: "find", s: "abc", p: "", args: "10", want: `4,3`},
	{fn: "find", s: "abc", p: "", args: "2", want: `2,1`},
	{fn: "find", s: "abc", p: "", args: "-1", want: `3,2`},
	{fn: "find", s: "abc", p: "x*", args: "10", want: `4,3`},
	{fn: "find", s: "abc", p: "c", args: "10", want: `nil`},
	{fn: "find", s: "abc", p: "c", args: "10, true", want: `nil`},
	{fn: "find", s: "abc", p: "", args: "10, true", want: `4,3`},
	{fn: "match", s: "abc", p: "x*", args: "10", want: `""`},
	{fn: "match", s: "abc", p: "()", args: "1e9", want: `4`},
	{fn: "match", s: "abc", p: "()", args: "-1e9", want: `1`},
	{fn: "match", s: "abc", p: "x", want: `nil`},
	// find is a plain search when the pattern has no special character
	{fn: "find", s: "abc", p: ")", want: `nil`},
	{fn: "find", s: "a)c", p: "a)", want: `1,2`},
	{fn: "find", s: "a]c", p: "]", want: `2,2`},
	{fn: "match", s: "a)c", p: "a)", want: `error`},
	// gmatch: '^' is an ordinary character
	{fn: "gmatch", s: "a^b^", p: "^.", want: `{"^b"}`},
	{fn: "gmatch", s: "^a^a", p: "^a", want: `{"^a"} {"^a"}`},
	{fn: "gmatch", s: "hello", p: "^h", want: ``},
	// gsub counts: n <= 0 replaces nothing, fractions are truncated
	{fn: "gsub", s: "hello world", p: "o", args: `"0", 0`, want: `"hello world",0`},
	{fn: "gsub", s: "hello world", p: "o", args: `"0", -1`, want: `"hello world",0`},
	{fn: "gsub", s: "hello world", p: "o", args: `"0", 1.5`, want: `"hell0 world",1`},
	{fn: "gsub", s: "hello world", p: "[", args: `"0", 0`, want: `"hello world",0`},
	// replacement values: '%' before a non-digit is that character; true
	// and non-string values are errors
	{fn: "gsub", s: "abc", p: "%w", args: `"%x"`, want: `"xxx",3`},
	{fn: "gsub", s: "abc", p: "%w", args: `42`, want: `"424242",3`},
	{fn: "gsub", s: "abc", p: "(%w)", args: `1.5`, want: `"1.51.51.5",3`},
	{fn: "gsub", s: "abc", p: "%w", args: `{a = 1, b = true}`, want: `error`},
	{fn: "gsub", s: "abc", p: "%w", args: `{a = "x", c = {}}`, want: `error`},
	{fn: "gsub", s: "abc", p: "%w", args: `function(c) return true end`, want: `error`},
	// frontier patterns
	{fn: "find", s: "THE (quick) fox", p: "%f[%a]%a+", args: "5", want: `6,10`},
	{fn: "gsub", s: "hello world", p: "%f[%w]%w+", args: `"<%0>"`, want: `"<hello> <world>",2`},
	{fn: "gmatch", s: "the cat sat", p: "%f[%a]%a", want: `{"t"} {"c"} {"s"}`},
	{fn: "gmatch", s: "the cat sat", p: "%a%f[%A]", want: `{"e"} {"t"} {"t"}`},
	{fn: "find", s: "abc", p: "%f[%l]", want: `1,0`},
	{fn: "find", s: "abc", p: "%f[^%l]", want: `4,3`},
	{fn: "find", s: "abc", p: "%f[%z]", want: `4,3`},
	{fn: "find", s: "", p: "%f[%a]", want: `nil`},
	{fn: "find", s: "", p: "%f[%z]", want: `nil`},
	{fn: "find", s: "", p: "%f[^%z]", want: `nil`},
	{fn: "gsub", s: "THE (quick) fox", p: "%f[%a]%u+%f[%A]", args: `"X"`, want: `"X (quick) fox",1`},
	{fn: "match", s: "foo123bar", p: "%f[%d](%d+)%f[%D]", want: `"123"`},
	{fn: "gmatch", s: "a1b2", p: "%f[%d]()", want: `{2} {4}`},
	// sets with a class next to '-'
	{fn: "find", s: "a-b", p: "[%a-z]+", want: `1,3`},
	{fn: "find", s: "1-z", p: "[%d-z]+", want: `1,3`},
	{fn: "match", s: "b-e", p: "[a-c-e]+", want: `"b-e"`},
	{fn: "match", s: "z", p: "[a-%z]", want: `"z"`},
	{fn: "match", s: "%", p: "[+-%]]", want: `nil`},
	{fn: "match", s: "]", p: "[+-%]]", want: `"]"`},
	// errors are raised when the matcher reaches them, as in Lua 5.1
	{fn: "find", s: "abc", p: "%", want: `error`},
	{fn: "find", s: "", p: "%", want: `error`},
	{fn: "find", s: "abc", p: "[a", want: `error`},
	{fn: "find", s: "abc", p: "[", want: `error`},
	{fn: "find", s: "abc", p: "[]", want: `error`},
	{fn: "find", s: "abc", p: "[^]", want: `error`},
	{fn: "find", s: "abc", p: "[%]", want: `error`},
	{fn: "find", s: "abc", p: "[a%", want: `error`},
	{fn: "find", s: "abc", p: "%b", want: `error`},
	{fn: "find", s: "abc", p: "%ba", want: `error`},
	{fn: "find", s: "abc", p: "%f", want: `error`},
	{fn: "find", s: "abc", p: "%fa", want: `error`},
	{fn: "find", s: "abc", p: "%f[a", want: `error`},
	{fn: "find", s: "abc", p: "(", want: `error`},
	{fn: "find", s: "abc", p: "(a", want: `error`},
	{fn: "find", s: "xyz", p: "(a", want: `nil`},
	{fn: "find", s: "abc", p: "x[", want: `nil`},
	{fn: "find", s: "x", p: "x[", want: `error`},
	{fn: "find", s: "abc", p: "x%", want: `nil`},
	{fn: "match", s: "abc", p: ")", want: `error`},
	{fn: "match", s: "abc", p: "a)", want: `error`},
	{fn: "match", s: "abc", p: "x)", want: `nil`},
	{fn: "match", s: "abc", p: "%1", want: `error`},
	{fn: "match", s: "abc", p: "%0", want: `error`},
	{fn: "match", s: "abc", p: "(a%1)", want: `error`},
	{fn: "match", s: "abc", p: "(a)%2", want: `error`},
	{fn: "match", s: "aa", p: "()%1", want: `nil`},
	{fn: "match", s: "a", p: strings.Repeat("(", 33), want: `error`},
	{fn: "match", s: "a", p: strings.Repeat("(", 32) + strings.Repeat(")", 32), want: strings.Repeat(`"",`, 31) + "1"}, // the innermost () is a position capture
	{fn: "match", s: "a", p: strings.Repeat("()", 32), want: strings.TrimSuffix(strings.Repeat(`1,`, 32), ",")},
	{fn: "match", s: "a", p: strings.Repeat("()", 33), want: `error`},
	{fn: "gmatch", s: "abc", p: "[a", want: `error`},
	{fn: "gmatch", s: "abc", p: "(", want: `error`},
	{fn: "gsub", s: "abc", p: "(a", args: `"x"`, want: `"xbc",1`},
	{fn: "gsub", s: "abc", p: "(a", args: `"%1"`, want: `error`},
	{fn: "gsub", s: "abc", p: "(a", args: `"%0"`, want: `"abc",1`},
	{fn: "gsub", s: "abc", p: "(a", args: `{}`, want: `error`},
	{fn: "gsub", s: "abc", p: "(a", args: `repl_f`, want: `error`},
	{fn: "gsub", s: "abc", p: "%", args: `"x"`, want: `error`},
	{fn: "gsub", s: "abc", p: "b%", args: `"x"`, want: `error`},
	{fn: "gsub", s: "abc", p: "x%", args: `"x"`, want: `"abc",0`},
}

// TestPatternConformance compares our find/match/gmatch/gsub with
// gopher-lua's on the cross-product table and the explicit cases.
func TestPatternConformance(t *testing.T) {
	ours := newPatternEvaluator(t, true)
	oracle := newPatternEvaluator(t, false)
	cases := append(crossCases(), oracleCases...)
	if len(cases) < 5000 {
		t.Fatalf("only %d cases", len(cases))
	}
	failed := 0
	for _, c := range cases {
		got, want := checkOurs(t, ours, c), oracle.eval(t, c)
		if !sameResult(got, want) {
			t.Errorf("%v:\n got  %s\n want %s (gopher-lua)", c, got, want)
			if failed++; failed > 20 {
				t.Fatal("too many failures")
			}
		}
	}
	t.Logf("%d cases agree with gopher-lua", len(cases))
}

// TestPatternLua51 checks the cases where gopher-lua is not Lua 5.1.
func TestPatternLua51(t *testing.T) {
	ours := newPatternEvaluator(t, true)
	for _, c := range lua51Cases {
		if got := checkOurs(t, ours, c); !sameResult(got, c.want) {
			t.Errorf("%v:\n got  %s\n want %s", c, got, c.want)
		}
	}
}

// TestPatternErrorMessages checks that malformed patterns fail with Lua
// errors saying what is wrong.
func TestPatternErrorMessages(t *testing.T) {
	ours := newPatternEvaluator(t, true)
	for _, tc := range []struct {
		c    patCase
		want string
	}{
		{patCase{fn: "find", s: "abc", p: "%"}, "malformed pattern (ends with '%')"},
		{patCase{fn: "find", s: "abc", p: "[a"}, "malformed pattern (missing ']')"},
		{patCase{fn: "find", s: "abc", p: "%b("}, "missing arguments to '%b'"},
		{patCase{fn: "find", s: "abc", p: "%fa"}, "missing '[' after '%f' in pattern"},
		{patCase{fn: "match", s: "abc", p: "a)"}, "invalid pattern capture"},
		{patCase{fn: "match", s: "abc", p: "%1"}, "invalid capture index"},
		{patCase{fn: "match", s: "abc", p: "(a"}, "unfinished capture"},
		{patCase{fn: "match", s: "a", p: strings.Repeat("(", 40)}, "too many captures"},
		{patCase{fn: "gsub", s: "abc", p: "b", args: `"%3"`}, "invalid capture index"},
		{patCase{fn: "gsub", s: "abc", p: "b", args: `{b = true}`}, "invalid replacement value (a boolean)"},
		{patCase{fn: "gsub", s: "abc", p: "b", args: `{b = {}}`}, "invalid replacement value (a table)"},
		{patCase{fn: "match", s: strings.Repeat("a", 3000), p: strings.Repeat("a?", 3000)}, "pattern too complex"},
		{patCase{fn: "match", s: "a", p: strings.Repeat("(a?", 20) + strings.Repeat("()", 20)}, "too many captures"},
	} {
		got := checkOurs(t, ours, tc.c)
		if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, tc.want) {
			t.Errorf("%v: got %s, want an error with %q", tc.c, got, tc.want)
		}
	}
}

// TestPatternLua51Reference runs every case through a Lua 5.1 interpreter
// when one is installed (lua5.1 on PATH) and compares with ours. The only
// intended differences: "pattern too complex" (Lua 5.1 has no depth
// guard) and a '%' at the end of a gsub replacement (Lua 5.1 inserts a NUL
// byte, we insert '%'); neither occurs in the tables.
func TestPatternLua51Reference(t *testing.T) {
	bin, err := exec.LookPath("lua5.1")
	if err != nil {
		t.Skip("lua5.1 not installed")
	}
	cases := append(append(crossCases(), oracleCases...), lua51Cases...)
	var script bytes.Buffer
	script.WriteString(patternPrelude)
	for _, c := range cases {
		fmt.Fprintf(&script, "S = %s P = %s print(%s)\n", luaQuote(c.s), luaQuote(c.p), c.call())
	}
	cmd := exec.Command(bin, "-")
	cmd.Stdin = &script
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lua5.1: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("lua5.1 printed %d lines for %d cases", len(lines), len(cases))
	}
	ours := newPatternEvaluator(t, true)
	failed := 0
	for i, c := range cases {
		if got := checkOurs(t, ours, c); !sameResult(got, lines[i]) {
			t.Errorf("%v:\n got  %s\n want %s (Lua 5.1)", c, got, lines[i])
			if failed++; failed > 20 {
				t.Fatal("too many failures")
			}
		}
	}
	t.Logf("%d cases agree with Lua 5.1", len(cases))
}

// luaQuote writes s as a Lua string literal with every byte outside
// printable ASCII as a three-digit decimal escape.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "\\%03d", c)
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// errSteps is returned by stepLimit when its budget is spent.
var errSteps = errors.New("step budget spent")

// stepLimit is a matchLimiter that fails after max checks.
type stepLimit struct{ checks, max int }

func (l *stepLimit) matchLimit() error {
	l.checks++
	if l.checks > l.max {
		return errSteps
	}
	return nil
}

// TestMatcherStepBudget: a pattern with catastrophic backtracking is
// stopped by the limiter, mid-search, with the limiter's error.
func TestMatcherStepBudget(t *testing.T) {
	subject := strings.Repeat("a", 100000)
	for _, p := range []string{".-.-.-.-.-x", "a*a*a*a*a*b", "(.-)(.-)(.-)(.-)%1x", "%b()", "[^b]-[^b]-[^b]-c", "^.-.-.-x$"} {
		lim := &stepLimit{max: 50}
		var m matcher
		m.init(subject, p, true, lim)
		_, _, err := m.find(0)
		if p == "%b()" {
			// Linear patterns finish within the budget.
			if err != nil {
				t.Errorf("%q: %v", p, err)
			}
			continue
		}
		if !errors.Is(err, errSteps) {
			t.Errorf("%q: got %v, want the limiter's error", p, err)
		}
		if lim.checks != lim.max+1 {
			t.Errorf("%q: %d checks", p, lim.checks)
		}
	}
}

// TestMatcherDepth: deep nesting fails with "pattern too complex" instead
// of growing the Go stack with the pattern.
func TestMatcherDepth(t *testing.T) {
	for _, tc := range []struct{ s, p string }{
		{strings.Repeat("a", 100000), strings.Repeat("a?", 100000)},
		{strings.Repeat("a", 100000), strings.Repeat("a*", 50000) + "b"},
		{strings.Repeat("ab", 50000), strings.Repeat("a-b", 50000) + "$"},
		{strings.Repeat("x", 5000), strings.Repeat("()", 16) + strings.Repeat("x?", 5000)},
	} {
		var m matcher
		m.init(tc.s, tc.p, true, nil)
		_, _, err := m.find(0)
		if err == nil || err.Error() != "pattern too complex" {
			t.Errorf("%.20q...: got %v", tc.p, err)
		}
	}
	// Below the cap, long patterns work.
	var m matcher
	m.init(strings.Repeat("a", 400), strings.Repeat("a?", 400)+"$", true, nil)
	if s, e, err := m.find(0); err != nil || s != 0 || e != 400 {
		t.Fatalf("got %d %d %v", s, e, err)
	}
}

// TestPatternSandboxLimits: hostile patterns are stopped at the run's
// deadline with the timeout limit error; pcall cannot catch it; the pool
// stays usable.
func TestPatternSandboxLimits(t *testing.T) {
	e := newTestEngine(t, Options{MaxStates: 1})
	const setup = `local s = string.rep("a", 100000) local p = ".-.-.-.-.-x" `
	for _, tc := range []struct{ name, src string }{
		{"find", setup + `return {r = s:find(p)}`},
		{"find with init", setup + `return {r = string.find(s, p, -50000)}`},
		{"match", setup + `return {r = string.match(s, "(.-)(.-)(.-)(.-)%1x")}`},
		{"gmatch", setup + `for w in s:gmatch(p) do end return {}`},
		{"gsub pattern", setup + `return {r = s:gsub(p, "x")}`},
		{"gsub function", setup + `return {r = s:gsub("a", function() return s:match(p) end)}`},
		{"pcall", setup + `local ok, err = pcall(string.find, s, p) return {ok = ok, err = err}`},
		{"pcall loop", setup + `while true do pcall(string.match, s, p) end`},
		{"xpcall", setup + `xpcall(function() return s:find(p) end, function(e) return e end) return {}`},
		{"coroutine", setup + `local co = coroutine.create(function() return s:find(p) end) local ok = coroutine.resume(co) return {ok = ok}`},
		{"frontier", `local s = string.rep("a ", 50000) return {r = s:find("%f[%a].-%f[%a].-%f[%a].-%f[%a].-x")}`},
		{"balanced", `local s = string.rep("(", 100000) return {r = s:find("%b()")}`},
		{"backref", `local s = string.rep("a", 100000) return {r = s:find("(a-)(a-)%1%2x")}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runSrc(t, e, tc.src, nil, RunOptions{Timeout: 200 * time.Millisecond})
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != LimitTimeout {
				t.Fatalf("got %v, want the timeout limit", err)
			}
			if res.Record.Limit != LimitTimeout {
				t.Fatalf("record limit %q", res.Record.Limit)
			}
			// The pool's only state was discarded; the next run gets a fresh one.
			res, err = runSrc(t, e, `return {r = ("key=val"):match("(%w+)=(%w+)")}`, nil, RunOptions{})
			if err != nil || fmtValue(res.Value) != "map[r:key]" {
				t.Fatalf("following run: %v %v", res, err)
			}
		})
	}
	if st := e.Stats(); st.StatesDiscarded == 0 {
		t.Fatalf("no state discarded: %+v", st)
	}

	// The caller's cancellation stops a match too.
	ctx, cancel := context.WithCancel(testCtx(t))
	stop := time.AfterFunc(100*time.Millisecond, cancel)
	defer stop.Stop()
	_, err := e.Run(ctx, Script{Name: "test", Source: setup + `return {r = s:find(p)}`}, nil, RunOptions{Timeout: time.Minute})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != LimitCanceled {
		t.Fatalf("got %v, want the canceled limit", err)
	}
}

// TestPatternSandbox runs the pattern functions through the engine: plain
// results, methods on strings, pattern errors as catchable Lua errors.
func TestPatternSandbox(t *testing.T) {
	e := newTestEngine(t, Options{})
	for _, tc := range []struct{ name, src, want string }{
		{"find", `local a, b, c = ("hello world"):find("(o)", 6) return {a = a, b = b, c = c}`, "map[a:8 b:8 c:o]"},
		{"find plain", `return {a = string.find("a.b", ".", 1, true)}`, "map[a:2]"},
		{"match", `local k, v = string.match("key = value", "(%w+)%s*=%s*(%w+)") return {k = k, v = v}`, "map[k:key v:value]"},
		{"match position", `local a, b = ("  x"):match("()x()") return {a = a, b = b}`, "map[a:3 b:4]"},
		{"gmatch", `local t = {} for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do t[#t + 1] = k .. v end return t`, "[a1 b2]"},
		{"gmatch frontier", `local t = {} for w in ("THE (quick) fox"):gmatch("%f[%a]%a+") do t[#t + 1] = w end return t`, "[THE quick fox]"},
		{"result counts", `return {m = select("#", string.match("abc", "x")), g = select("#", string.gmatch("a", "a")), f = select("#", string.find("abc", "(b)()"))}`, "map[f:4 g:1 m:1]"},
		{"gsub", `local s, n = ("hello world"):gsub("o", "0") return {s = s, n = n}`, "map[n:2 s:hell0 w0rld]"},
		{"gsub n", `local s, n = ("hello world"):gsub("o", "0", 1) return {s = s, n = n}`, "map[n:1 s:hell0 world]"},
		{"gsub balanced", `return {s = ("f(a(b)c) g(d)"):gsub("%b()", "")}`, "map[s:f g]"},
		{"pattern error is catchable", `local ok, err = pcall(string.find, "abc", "[a") return {ok = ok, err = err}`, "map[err:malformed pattern (missing ']') ok:false]"},
		{"too complex is catchable", `local ok, err = pcall(string.match, string.rep("a", 3000), string.rep("a?", 3000)) return {ok = ok, err = err}`, "map[err:pattern too complex ok:false]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runSrc(t, e, tc.src, nil, RunOptions{})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			got := fmtValue(res.Value)
			// Errors raised from Go carry the caller's position.
			got = strings.ReplaceAll(got, "test:1: ", "")
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// pmComparable reports whether p is in the part of the pattern language
// where gopher-lua's matcher agrees with Lua 5.1: no %f, %b with its two
// characters, balanced captures, back-references to finished text
// captures only, at most maxCaptures captures, and sets without a class
// or another range next to a '-'.
func pmComparable(p string) bool {
	var open []int
	text := map[int]bool{} // finished text captures
	n := 0
	for i := 0; i < len(p); {
		switch p[i] {
		case '%':
			if i+1 >= len(p) {
				return false
			}
			switch d := p[i+1]; {
			case d == 'f':
				return false
			case d == 'b':
				if i+3 >= len(p) {
					return false
				}
				i += 4
				continue
			case isDigit(d):
				if !text[int(d-'0')] {
					return false
				}
			}
			i += 2
		case '[':
			end, ok := simpleSet(p, i)
			if !ok {
				return false
			}
			i = end
		case '(':
			n++
			if i+1 < len(p) && p[i+1] == ')' {
				i += 2
				continue
			}
			open = append(open, n)
			i++
		case ')':
			if len(open) == 0 {
				return false
			}
			text[open[len(open)-1]] = true
			open = open[:len(open)-1]
			i++
		default:
			i++
		}
	}
	return len(open) == 0 && n <= maxCaptures
}

// simpleSet returns the end of the set at p[i] when it is well formed and
// uses '-' only in ranges of two plain characters.
func simpleSet(p string, i int) (int, bool) {
	j := i + 1
	if j < len(p) && p[j] == '^' {
		j++
	}
	for first := true; ; first = false {
		if j >= len(p) {
			return 0, false
		}
		if p[j] == ']' && !first {
			return j + 1, true
		}
		if p[j] == '%' {
			if j+1 >= len(p) || (j+2 < len(p) && p[j+2] == '-') {
				return 0, false
			}
			j += 2
			continue
		}
		if j+2 < len(p) && p[j+1] == '-' && p[j+2] != ']' {
			if p[j+2] == '%' || (j+3 < len(p) && p[j+3] == '-') {
				return 0, false
			}
			j += 3
			continue
		}
		j++
	}
}

// FuzzPattern: random patterns and subjects must never panic the matcher,
// and where gopher-lua agrees with Lua 5.1 (pmComparable) and the match
// needs little work, our results must equal its.
func FuzzPattern(f *testing.F) {
	for _, seed := range []struct {
		s, p string
		init int
	}{
		{"hello world", "o", 1},
		{"hello world", "(%w+) (%w+)", 1},
		{"key=value", "^(%w+)=(%w*)$", 1},
		{"  trim  ", "^%s*(.-)%s*$", 1},
		{"f(a(b)c)d", "%b()", 2},
		{"THE (quick) fox", "%f[%a]%a+", 1},
		{"abba", "(.)(.)%2%1", -3},
		{"aaa", "a-", 0},
		{"abc", "", 4},
		{"a.b", "[%.%]]", 1},
		{"x", "[^]]", 1},
		{"a\x00b", "%z", 1},
		{"abc", "()", 2},
		{"abc", "[a-", 1},
		{"abc", "%", 1},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ".-.-.-.-.-.-x", 1},
	} {
		f.Add(seed.s, seed.p, seed.init)
	}
	ours := newPatternEvaluator(f, true)
	oracle := newPatternEvaluator(f, false)
	f.Fuzz(func(t *testing.T, s, p string, init int) {
		if len(s) > 64 || len(p) > 32 {
			return
		}
		// The matcher itself: no panic, and a bounded amount of work
		// for a gsub-like scan; skip patterns that need more.
		for _, anchor := range []bool{true, false} {
			lim := &stepLimit{max: 32}
			var m matcher
			m.init(s, p, anchor, lim)
			for pos := 0; pos <= len(s); {
				start, end, err := m.find(pos)
				if errors.Is(err, errSteps) {
					return
				}
				if err != nil || start < 0 {
					break
				}
				if start > end || end > len(s) || start < pos {
					t.Fatalf("find(%q, %q, %d) = %d, %d", s, p, pos, start, end)
				}
				pos = max(end, start+1)
			}
		}
		if init > len(s)+1 || init < -len(s)-3 {
			init = 1
		}
		cases := []patCase{
			{fn: "find", s: s, p: p, args: fmt.Sprint(init)},
			{fn: "match", s: s, p: p, args: fmt.Sprint(init)},
			{fn: "gsub", s: s, p: p, args: `"[%0|%1]"`},
			{fn: "gsub", s: s, p: p, args: `repl_f, 3`},
			{fn: "gmatch", s: s, p: p},
		}
		comparable := pmComparable(p)
		for _, c := range cases {
			got := checkOurs(t, ours, c)
			switch {
			case !comparable,
				c.fn == "gmatch" && strings.HasPrefix(p, "^"),
				c.fn == "find" && p == "" && init != 1:
				continue
			}
			if want := oracle.eval(t, c); !sameResult(got, want) {
				t.Fatalf("%v:\n got  %s\n want %s (gopher-lua)", c, got, want)
			}
		}
	})
}

// benchPatterns are typical script patterns for BenchmarkPattern.
var benchPatterns = []struct{ name, s, p string }{
	{"date", "2024-05-01T12:30:00Z", "^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$"},
	{"trim", "   some padded text   ", "^%s*(.-)%s*$"},
	{"kv", "order_id=A-1234&amount=99.50&currency=HKD", "amount=([%d%.]+)"},
	{"email", "first.last+tag@mail.example.com", "^[%w%._%+%-]+@[%w%.%-]+%.%a%a+$"},
	{"word in 1KB", strings.Repeat("lorem ipsum dolor ", 60) + "needle42", "(needle)(%d+)"},
	{"no match in 1KB", strings.Repeat("lorem ipsum dolor ", 60), "%d%d%d"},
	{"balanced", "call(f(x, y), g(z)) + rest", "%b()"},
}

// BenchmarkPattern compares the sandbox's matcher with gopher-lua's pm on
// typical patterns (first match with captures). Compare the ns/op of
// ours/X and pm/X.
func BenchmarkPattern(b *testing.B) {
	for _, bp := range benchPatterns {
		b.Run("ours/"+bp.name, func(b *testing.B) {
			lim := &stepLimit{max: 1 << 62}
			for b.Loop() {
				var m matcher
				m.init(bp.s, bp.p, true, lim)
				if s, _, err := m.find(0); err != nil || (s < 0 && !strings.HasPrefix(bp.name, "no match")) {
					b.Fatal(s, err)
				}
			}
		})
		b.Run("pm/"+bp.name, func(b *testing.B) {
			src := []byte(bp.s)
			for b.Loop() {
				ms, err := pm.Find(bp.p, src, 0, 1)
				if err != nil || (len(ms) == 0 && !strings.HasPrefix(bp.name, "no match")) {
					b.Fatal(err)
				}
			}
		})
	}
	// All matches, as gsub and gmatch scan.
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 25)
	b.Run("ours/all words", func(b *testing.B) {
		for b.Loop() {
			var m matcher
			m.init(text, "%a+", true, nil)
			for pos := 0; pos <= len(text); {
				s, e, _ := m.find(pos)
				if s < 0 {
					break
				}
				pos = max(e, s+1)
			}
		}
	})
	b.Run("pm/all words", func(b *testing.B) {
		src := []byte(text)
		for b.Loop() {
			if _, err := pm.Find("%a+", src, 0, -1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
