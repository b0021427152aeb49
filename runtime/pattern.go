package runtime

import (
	"math"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Lua 5.1 pattern matching (reference manual §5.4.1), written for the
// sandbox so that matching can be stopped: gopher-lua's matcher runs as one
// long Go call, and a hostile pattern such as
// string.find(string.rep("a", 1e5), ".-.-.-.-.-x") would hold its state and
// a CPU long past the run's deadline.
//
// The matcher is a backtracking interpreter over the pattern text, like the
// reference implementation's: errors in the pattern are reported when the
// matcher reaches them, so string.find("abc", "x[") is nil, not an error,
// as in Lua 5.1. It differs from stock Lua in two bounds:
//
//   - work: every step (a pattern item tried, a character consumed by a
//     repetition, a byte scanned by %b or compared by a back-reference,
//     a set member examined) is counted, and every patternCheckSteps steps
//     the run's limits are checked (matchLimiter); a tripped limit aborts
//     the match and is raised as that limit's error, which pcall cannot
//     swallow.
//   - recursion: repetitions, optional items and captures nest one Go call
//     per pattern item; more than maxMatchDepth nested items fail with the
//     Lua error "pattern too complex" (Lua 5.2 has the same guard).
//
// A NUL byte in a pattern is an ordinary character (Lua 5.1's manual forbids
// them; Lua 5.2 allows them).

const (
	// maxCaptures is the number of captures a pattern may have
	// (LUA_MAXCAPTURES).
	maxCaptures = 32
	// maxMatchDepth bounds the nesting of the matcher's recursion.
	maxMatchDepth = 1000
	// patternCheckSteps is how many matcher steps pass between two limit
	// checks; a step is a few nanoseconds, so a check every ~10-50 µs.
	patternCheckSteps = 4096
	// patternSpecials are the characters that make string.find use the
	// matcher instead of a plain search (as in Lua 5.1).
	patternSpecials = "^$*+?.([%-"
)

// Capture lengths with a special meaning.
const (
	capUnfinished = -1 // the capture's ')' has not been reached yet
	capPosition   = -2 // a position capture: ()
)

// matchLimiter is consulted by the matcher every patternCheckSteps steps;
// a non-nil error aborts the match with that error.
type matchLimiter interface {
	matchLimit() error
}

// patternError is an error in a pattern, raised as a plain Lua error.
type patternError string

func (e patternError) Error() string { return string(e) }

// matchAbort carries an error out of the recursive matcher (panic/recover
// stays inside matcher.find).
type matchAbort struct{ err error }

type capture struct {
	start int // byte offset in the subject
	len   int // byte length, or capUnfinished / capPosition
}

// matcher matches one pattern against one subject. It is reusable for
// successive searches (gsub, gmatch): captures describe the last match.
type matcher struct {
	src, pat string
	p0       int  // where the pattern proper starts (after an anchor)
	anchored bool // the pattern starts with '^' and the caller honours it
	lead     int  // a byte every match must start with, or -1

	level int // captures opened so far in the current attempt
	caps  [maxCaptures]capture
	depth int

	budget int // steps left before the next limit check
	lim    matchLimiter
}

// init prepares m to match pat in src. anchor tells whether a leading '^'
// anchors the match (find, match, gsub) or is an ordinary character
// (gmatch). lim may be nil (no limit).
func (m *matcher) init(src, pat string, anchor bool, lim matchLimiter) {
	*m = matcher{src: src, pat: pat, lim: lim, budget: patternCheckSteps, lead: -1}
	if anchor && len(pat) > 0 && pat[0] == '^' {
		m.anchored, m.p0 = true, 1
	}
	m.lead = leadingLiteral(pat, m.p0)
}

// leadingLiteral returns the byte a match of pat[p:] must start with when
// its first item is a plain character that must occur once, else -1. It
// lets the search skip to candidate positions; skipping is invisible, as
// the matcher would fail at the first item there without reaching
// anything else in the pattern.
func leadingLiteral(pat string, p int) int {
	if p >= len(pat) {
		return -1
	}
	switch c := pat[p]; c {
	case '(', ')', '%', '[', '.':
		return -1
	case '$':
		if p+1 == len(pat) {
			return -1
		}
	}
	if p+1 < len(pat) {
		switch pat[p+1] {
		case '*', '?', '-':
			return -1
		}
	}
	return int(pat[p])
}

// find searches for the first match starting at or after init (only at
// init when anchored). It returns the match's bounds, or start = -1 when
// there is none; captures are in m.caps[:m.level]. err is a patternError
// or the limiter's error.
func (m *matcher) find(init int) (start, end int, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(matchAbort)
			if !ok {
				panic(r)
			}
			start, end, err = -1, -1, a.err
		}
	}()
	for s := init; s <= len(m.src); s++ {
		if m.lead >= 0 && !m.anchored {
			i := strings.IndexByte(m.src[s:], byte(m.lead))
			if i < 0 {
				break
			}
			s += i
		}
		m.level, m.depth = 0, 0
		if e := m.match(s, m.p0); e >= 0 {
			return s, e, nil
		}
		if m.anchored {
			break
		}
	}
	return -1, -1, nil
}

// fail aborts the match with a pattern error.
func (m *matcher) fail(msg string) {
	panic(matchAbort{patternError(msg)})
}

// step counts n units of work and checks the limits when the budget is
// spent.
func (m *matcher) step(n int) {
	m.budget -= n
	if m.budget <= 0 {
		m.refill()
	}
}

func (m *matcher) refill() {
	m.budget = patternCheckSteps
	if m.lim != nil {
		if err := m.lim.matchLimit(); err != nil {
			panic(matchAbort{err})
		}
	}
}

// match returns the end of a match of pat[p:] at src[s:], or -1.
func (m *matcher) match(s, p int) int {
	m.depth++
	if m.depth > maxMatchDepth {
		m.fail("pattern too complex")
	}
	m.step(1)
	e := m.matchItems(s, p)
	m.depth--
	return e
}

// matchItems matches pattern items one after the other; items that need
// backtracking (repetitions, optional items, captures) continue through a
// nested match of the rest of the pattern.
func (m *matcher) matchItems(s, p int) int {
	src, pat := m.src, m.pat
	for p < len(pat) {
		m.step(1)
		switch pat[p] {
		case '(':
			if p+1 < len(pat) && pat[p+1] == ')' {
				return m.openCapture(s, p+2, capPosition)
			}
			return m.openCapture(s, p+1, capUnfinished)
		case ')':
			return m.closeCapture(s, p+1)
		case '$':
			if p+1 == len(pat) { // anchor at the subject's end
				if s == len(src) {
					return s
				}
				return -1
			}
		case '%':
			if p+1 >= len(pat) {
				break // classEnd reports it
			}
			switch c := pat[p+1]; {
			case c == 'b':
				if s = m.balance(s, p+2); s < 0 {
					return -1
				}
				p += 4
				continue
			case c == 'f':
				if s, p = m.frontier(s, p+2); s < 0 {
					return -1
				}
				continue
			case '0' <= c && c <= '9':
				if s = m.backref(s, c); s < 0 {
					return -1
				}
				p += 2
				continue
			}
		}
		// A single-character class, possibly followed by a quantifier.
		ep := m.classEnd(p)
		ok := s < len(src) && m.single(src[s], p, ep)
		if ep < len(pat) {
			switch pat[ep] {
			case '?':
				if ok {
					if e := m.match(s+1, ep+1); e >= 0 {
						return e
					}
				}
				p = ep + 1
				continue
			case '*':
				return m.maxExpand(s, p, ep)
			case '+':
				if !ok {
					return -1
				}
				return m.maxExpand(s+1, p, ep)
			case '-':
				return m.minExpand(s, p, ep)
			}
		}
		if !ok {
			return -1
		}
		s++
		p = ep
	}
	return s
}

// classEnd returns the index just past the single-character class at p.
func (m *matcher) classEnd(p int) int {
	pat := m.pat
	c := pat[p]
	p++
	switch c {
	case '%':
		if p >= len(pat) {
			m.fail("malformed pattern (ends with '%')")
		}
		return p + 1
	case '[':
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		// The first member is taken literally, so "[]]" is a set of ']'.
		for {
			if p >= len(pat) {
				m.fail("malformed pattern (missing ']')")
			}
			c := pat[p]
			p++
			if c == '%' && p < len(pat) {
				p++ // an escaped member, e.g. %]
			}
			if p < len(pat) && pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

// single reports whether c matches the class pat[p:ep].
func (m *matcher) single(c byte, p, ep int) bool {
	switch m.pat[p] {
	case '.':
		return true
	case '%':
		return classMatches(c, m.pat[p+1])
	case '[':
		return m.inSet(c, p, ep-1)
	}
	return m.pat[p] == c
}

// inSet reports whether c is in the set pat[p:ec+1] ('[' at p, ']' at ec);
// it counts the set's length as work, as a set may be long.
func (m *matcher) inSet(c byte, p, ec int) bool {
	pat := m.pat
	m.step(ec - p)
	in := true
	p++
	if pat[p] == '^' {
		in = false
		p++
	}
	for ; p < ec; p++ {
		switch {
		case pat[p] == '%':
			p++
			if classMatches(c, pat[p]) {
				return in
			}
		case pat[p+1] == '-' && p+2 < ec:
			if pat[p] <= c && c <= pat[p+2] {
				return in
			}
			p += 2
		case pat[p] == c:
			return in
		}
	}
	return !in
}

// classMatches reports whether c is in the class %cl: a letter class
// (upper case for the complement) or the character cl itself.
func classMatches(c, cl byte) bool {
	lower := cl
	if 'A' <= cl && cl <= 'Z' {
		lower = cl + ('a' - 'A')
	}
	var in bool
	switch lower {
	case 'a':
		in = isLetter(c)
	case 'c':
		in = c < ' ' || c == 0x7f
	case 'd':
		in = isDigit(c)
	case 'l':
		in = 'a' <= c && c <= 'z'
	case 'p':
		in = '!' <= c && c <= '~' && !isLetter(c) && !isDigit(c)
	case 's':
		in = c == ' ' || '\t' <= c && c <= '\r'
	case 'u':
		in = 'A' <= c && c <= 'Z'
	case 'w':
		in = isLetter(c) || isDigit(c)
	case 'x':
		in = isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	case 'z':
		in = c == 0
	default:
		return cl == c
	}
	if lower != cl {
		return !in
	}
	return in
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// maxExpand matches the class pat[p:ep] greedily from s, then the rest of
// the pattern after the quantifier at ep, giving back one character at a
// time.
func (m *matcher) maxExpand(s, p, ep int) int {
	src := m.src
	n := 0
	for s+n < len(src) && m.single(src[s+n], p, ep) {
		n++
		m.step(1)
	}
	for ; n >= 0; n-- {
		if e := m.match(s+n, ep+1); e >= 0 {
			return e
		}
	}
	return -1
}

// minExpand matches the rest of the pattern after the quantifier at ep,
// consuming one more character of class pat[p:ep] each time it fails.
func (m *matcher) minExpand(s, p, ep int) int {
	src := m.src
	for {
		if e := m.match(s, ep+1); e >= 0 {
			return e
		}
		if s >= len(src) || !m.single(src[s], p, ep) {
			return -1
		}
		s++
		m.step(1)
	}
}

// openCapture starts capture number m.level at s and matches pat[p:].
func (m *matcher) openCapture(s, p, what int) int {
	if m.level >= maxCaptures {
		m.fail("too many captures")
	}
	m.caps[m.level] = capture{start: s, len: what}
	m.level++
	e := m.match(s, p)
	if e < 0 {
		m.level--
	}
	return e
}

// closeCapture ends the innermost open capture at s and matches pat[p:].
func (m *matcher) closeCapture(s, p int) int {
	l := m.level - 1
	for l >= 0 && m.caps[l].len != capUnfinished {
		l--
	}
	if l < 0 {
		m.fail("invalid pattern capture")
	}
	m.caps[l].len = s - m.caps[l].start
	e := m.match(s, p)
	if e < 0 {
		m.caps[l].len = capUnfinished
	}
	return e
}

// balance matches %bxy (x and y at p) at s: returns the end or -1.
func (m *matcher) balance(s, p int) int {
	src, pat := m.src, m.pat
	if p+1 >= len(pat) {
		m.fail("malformed pattern (missing arguments to '%b')")
	}
	if s >= len(src) || src[s] != pat[p] {
		return -1
	}
	open, close := pat[p], pat[p+1]
	depth := 1
	for i := s + 1; i < len(src); i++ {
		switch src[i] {
		case close:
			if depth--; depth == 0 {
				m.step(i - s)
				return i + 1
			}
		case open:
			depth++
		}
	}
	m.step(len(src) - s)
	return -1
}

// frontier matches %f[set] (the set at p) at s: the character before s is
// not in the set and the one at s is; the subject's ends count as '\0'.
// It returns s (or -1) and the index past the set.
func (m *matcher) frontier(s, p int) (int, int) {
	if p >= len(m.pat) || m.pat[p] != '[' {
		m.fail("missing '[' after '%f' in pattern")
	}
	ep := m.classEnd(p)
	var prev, cur byte
	if s > 0 {
		prev = m.src[s-1]
	}
	if s < len(m.src) {
		cur = m.src[s]
	}
	if m.inSet(prev, p, ep-1) || !m.inSet(cur, p, ep-1) {
		return -1, ep
	}
	return s, ep
}

// backref matches %1-%9 (digit c): the text of that finished capture.
func (m *matcher) backref(s int, c byte) int {
	l := int(c) - '1'
	if l < 0 || l >= m.level || m.caps[l].len == capUnfinished {
		m.fail("invalid capture index")
	}
	cp := m.caps[l]
	if cp.len < 0 { // a position capture matches no text
		return -1
	}
	m.step(cp.len)
	if len(m.src)-s >= cp.len && m.src[s:s+cp.len] == m.src[cp.start:cp.start+cp.len] {
		return s + cp.len
	}
	return -1
}

// captureValue returns capture i of the match src[s:e] as Lua sees it: a
// string, or a position for (); capture 0 of a pattern without captures
// is the whole match.
func (m *matcher) captureValue(L *lua.LState, i, s, e int) lua.LValue {
	if i >= m.level {
		if i == 0 {
			return lua.LString(m.src[s:e])
		}
		L.RaiseError("invalid capture index")
	}
	switch c := m.caps[i]; c.len {
	case capUnfinished:
		L.RaiseError("unfinished capture")
	case capPosition:
		return lua.LNumber(c.start + 1)
	default:
		return lua.LString(m.src[c.start : c.start+c.len])
	}
	return lua.LNil
}

// pushCaptures pushes the captures of the match src[s:e] and returns how
// many; with whole, a pattern without captures pushes the whole match.
func (m *matcher) pushCaptures(L *lua.LState, s, e int, whole bool) int {
	n := m.level
	if n == 0 && whole {
		n = 1
	}
	for i := 0; i < n; i++ {
		L.Push(m.captureValue(L, i, s, e))
	}
	return n
}

// matchLimit implements matchLimiter for the sandbox: it runs the run's
// periodic checks (deadline, cancellation, memory) and returns the tripped
// limit, if any.
func (vs *vmState) matchLimit() error {
	r := vs.run
	if r == nil {
		return nil
	}
	if r.tripped == nil {
		r.check()
	}
	if r.tripped != nil {
		return r.tripped
	}
	return nil
}

// search runs m.find and raises its error in L: a tripped limit as the
// run's limit error, a pattern error as a Lua error.
func (vs *vmState) search(L *lua.LState, m *matcher, init int) (start, end int) {
	start, end, err := m.find(init)
	if err != nil {
		if _, ok := err.(patternError); !ok && vs.run != nil && vs.run.tripped != nil {
			vs.run.raiseTripped(L)
		}
		L.RaiseError("%s", err.Error())
	}
	return start, end
}

// optInt is an optional integer argument, with a number out of the int
// range clamped into it (so huge inits behave as in Lua).
func optInt(L *lua.LState, n, def int) int {
	if L.Get(n) == lua.LNil {
		return def
	}
	f := float64(L.CheckNumber(n))
	switch {
	case f != f:
		return 0
	case f >= math.MaxInt32:
		return math.MaxInt32
	case f <= math.MinInt32:
		return math.MinInt32
	}
	return int(f)
}

// startIndex turns Lua's 1-based, possibly negative init into a byte
// offset in [0, n], as Lua 5.1 does.
func startIndex(init, n int) int {
	if init < 0 {
		init += n + 1
	}
	switch {
	case init <= 0:
		return 0
	case init > n:
		return n
	}
	return init - 1
}

// strFind is string.find(s, pattern [, init [, plain]]).
func (vs *vmState) strFind(L *lua.LState) int { return vs.findAux(L, true) }

// strMatch is string.match(s, pattern [, init]).
func (vs *vmState) strMatch(L *lua.LState) int { return vs.findAux(L, false) }

func (vs *vmState) findAux(L *lua.LState, find bool) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	init := startIndex(optInt(L, 3, 1), len(src))
	if find && (L.ToBool(4) || !strings.ContainsAny(pat, patternSpecials)) {
		i := strings.Index(src[init:], pat)
		if i < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + i + 1))
		L.Push(lua.LNumber(init + i + len(pat)))
		return 2
	}
	var m matcher
	m.init(src, pat, true, vs)
	s, e := vs.search(L, &m, init)
	if s < 0 {
		L.Push(lua.LNil)
		return 1
	}
	if find {
		L.Push(lua.LNumber(s + 1))
		L.Push(lua.LNumber(e))
		return 2 + m.pushCaptures(L, s, e, false)
	}
	return m.pushCaptures(L, s, e, true)
}

// strGmatch is string.gmatch(s, pattern): an iterator over the matches,
// each giving the captures (or the whole match). A leading '^' is an
// ordinary character here, as in Lua 5.1; an empty match advances the
// iterator by one character.
func (vs *vmState) strGmatch(L *lua.LState) int {
	src := L.CheckString(1)
	pat := L.CheckString(2)
	pos := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if pos > len(src) {
			return 0
		}
		var m matcher
		m.init(src, pat, false, vs)
		s, e := vs.search(L, &m, pos)
		if s < 0 {
			pos = len(src) + 1
			return 0
		}
		pos = e
		if e == s {
			pos++
		}
		return m.pushCaptures(L, s, e, true)
	}))
	return 1
}
