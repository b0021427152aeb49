package runtime

import (
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// reserve asks the current run (if any) for n bytes; see run.reserve.
func (vs *vmState) reserve(L *lua.LState, n int64) {
	if vs.run != nil {
		vs.run.reserve(L, n)
	}
}

// concat is the checked `..`: Compile rewrites a..b..c into
// ("")[concatMethod](a, b, c). Argument 1 is the "" receiver.
func (vs *vmState) concat(L *lua.LState) int {
	top := L.GetTop()
	var total int64
	plain := true
	for i := 2; i <= top; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			total += int64(len(v))
		case lua.LNumber:
			total += 24
		default:
			plain = false
		}
	}
	if plain {
		vs.reserve(L, total)
		var b strings.Builder
		b.Grow(int(total))
		for i := 2; i <= top; i++ {
			b.WriteString(lua.LVAsString(L.Get(i)))
		}
		L.Push(lua.LString(b.String()))
		return 1
	}
	// Some operand needs a __concat metamethod: fold right to left, pairwise,
	// as Lua does.
	acc := L.Get(top)
	for i := top - 1; i >= 2; i-- {
		lhs := L.Get(i)
		if canConcat(lhs) && canConcat(acc) {
			a, b := lua.LVAsString(lhs), lua.LVAsString(acc)
			vs.reserve(L, int64(len(a)+len(b)))
			acc = lua.LString(a + b)
			continue
		}
		mm := L.GetMetaField(lhs, "__concat")
		if mm == lua.LNil {
			mm = L.GetMetaField(acc, "__concat")
		}
		if mm == lua.LNil {
			bad := lhs
			if canConcat(lhs) {
				bad = acc
			}
			L.RaiseError("attempt to concatenate a %s value", bad.Type().String())
		}
		L.Push(mm)
		L.Push(lhs)
		L.Push(acc)
		L.Call(2, 1)
		acc = L.Get(-1)
		L.Pop(1)
	}
	L.Push(acc)
	return 1
}

func canConcat(v lua.LValue) bool {
	switch v.(type) {
	case lua.LString, lua.LNumber:
		return true
	}
	return false
}

// strRep is string.rep(s, n [, sep]) with the result size checked first.
func (vs *vmState) strRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt64(2)
	sep := L.OptString(3, "")
	if n <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	size := float64(len(s))*float64(n) + float64(len(sep))*float64(n-1)
	if size > float64(math.MaxInt32) {
		size = float64(math.MaxInt32)
	}
	vs.reserve(L, int64(size))
	if sep == "" {
		L.Push(lua.LString(strings.Repeat(s, int(n))))
		return 1
	}
	var b strings.Builder
	b.Grow(int(size))
	for i := int64(0); i < n; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s)
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// strFormat is string.format with Lua's two-digit width and precision
// limit and the result size bounded before formatting.
func (vs *vmState) strFormat(L *lua.LState) int {
	f := L.CheckString(1)
	specs := 0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		specs++
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		digits := 0
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			i++
			digits++
		}
		if i < len(f) && f[i] == '.' {
			i++
			pd := 0
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
				pd++
			}
			if pd > 2 {
				digits = 3
			}
		}
		if digits > 2 {
			L.RaiseError("invalid format (width or precision too long)")
		}
	}
	size := int64(len(f)) + int64(specs)*100
	for i := 2; i <= L.GetTop(); i++ {
		if s, ok := L.Get(i).(lua.LString); ok {
			size += int64(len(s))
		}
	}
	vs.reserve(L, size)
	return vs.orig.format(L)
}

// strGsub is string.gsub(s, pattern, repl [, n]) on the sandbox's
// interruptible matcher (pattern.go), with the output assembled once and
// size-checked as it grows. As in Lua 5.1, n defaults to no limit and
// n <= 0 replaces nothing; an empty match copies the next character and
// moves on.
func (vs *vmState) strGsub(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	repl := L.Get(3)
	if n, ok := repl.(lua.LNumber); ok { // a number is a replacement string
		repl = lua.LString(n.String())
	}
	if repl.Type() != lua.LTString {
		L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction)
	}
	limit := optInt(L, 4, len(src)+1)
	var m matcher
	m.init(src, pat, true, vs)
	var b strings.Builder
	last, pos, count := 0, 0, 0
	grow := func(s string) {
		if b.Len()+len(s) > 1<<16 {
			vs.reserve(L, int64(b.Len()+len(s)+len(src)-last))
		}
		b.WriteString(s)
	}
	for count < limit {
		start, end := vs.search(L, &m, pos)
		if start < 0 {
			break
		}
		count++
		grow(src[last:start])
		whole := src[start:end]
		var out lua.LValue
		switch r := repl.(type) {
		case lua.LString:
			out = lua.LString(expandRepl(L, string(r), &m, start, end))
		case *lua.LTable:
			out = L.GetTable(r, m.captureValue(L, 0, start, end))
		case *lua.LFunction:
			L.Push(r)
			n := m.pushCaptures(L, start, end, true)
			L.Call(n, 1)
			out = L.Get(-1)
			L.Pop(1)
		}
		switch o := out.(type) {
		case lua.LString:
			grow(string(o))
		case lua.LNumber:
			grow(o.String())
		case *lua.LNilType, lua.LBool:
			if lua.LVIsFalse(o) {
				grow(whole)
			} else {
				L.RaiseError("invalid replacement value (a boolean)")
			}
		default:
			L.RaiseError("invalid replacement value (a %s)", out.Type().String())
		}
		last = end
		switch {
		case end > start:
			pos = end
		case start < len(src):
			pos = start + 1
		default:
			pos = len(src) + 1
		}
		if m.anchored || pos > len(src) {
			break
		}
	}
	grow(src[last:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(count))
	return 2
}

// expandRepl expands %0-%9 and %% in a gsub replacement string for the
// match src[s:e] of m.
func expandRepl(L *lua.LState, repl string, m *matcher, s, e int) string {
	if strings.IndexByte(repl, '%') < 0 {
		return repl
	}
	var b strings.Builder
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '%' || i+1 == len(repl) {
			b.WriteByte(c)
			continue
		}
		i++
		c = repl[i]
		switch {
		case c == '0':
			b.WriteString(m.src[s:e])
		case c >= '1' && c <= '9':
			b.WriteString(lua.LVAsString(m.captureValue(L, int(c-'1'), s, e)))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// tableConcat is table.concat(t [, sep [, i [, j]]]) with the result size
// checked first.
func (vs *vmState) tableConcat(L *lua.LState) int {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, t.Len())
	if i > j {
		L.Push(lua.LString(""))
		return 1
	}
	parts := make([]string, 0, min(j-i+1, 1<<16))
	var size int64
	for k := i; k <= j; k++ {
		v := t.RawGetInt(k)
		if !canConcat(v) {
			L.RaiseError("invalid value (at index %d) in table for 'concat'", k)
		}
		s := lua.LVAsString(v)
		size += int64(len(s) + len(sep))
		if size > vs.eng.limits.MaxStringBytes {
			vs.reserve(L, size)
		}
		parts = append(parts, s)
	}
	vs.reserve(L, size)
	L.Push(lua.LString(strings.Join(parts, sep)))
	return 1
}

// mathRandom is math.random with the run's private generator.
func (vs *vmState) mathRandom(L *lua.LState) int {
	if vs.run == nil {
		L.RaiseError("math.random outside a run")
	}
	rng := vs.run.random()
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(rng.Float64()))
	case 1:
		n := L.CheckInt64(1)
		if n < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(rng.Int64N(n) + 1))
	default:
		lo, hi := L.CheckInt64(1), L.CheckInt64(2)
		if lo > hi {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(lo + rng.Int64N(hi-lo+1)))
	}
	return 1
}

// mathRandomseed reseeds the run's private generator.
func (vs *vmState) mathRandomseed(L *lua.LState) int {
	if vs.run == nil {
		return 0
	}
	vs.run.rng = newRNG(uint64(L.CheckInt64(1)))
	return 0
}
