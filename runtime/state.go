package runtime

import (
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

func init() {
	// gopher-lua stores t[k] for integer k below MaxArrayIndex in the array
	// part and fills the gap with nils in one VM instruction: t[67108863]=1
	// would allocate 1 GiB at once. Keep one instruction's fill at 16 MiB
	// (see the memory limit design in memory.go). This is a process-wide
	// knob of the library, set once before any state exists.
	lua.MaxArrayIndex = 1 << 20
}

// vmState is one pooled Lua state with its sandbox: read-only libraries,
// the base of every run's globals, and the per-state host modules.
type vmState struct {
	eng  *Engine
	L    *lua.LState
	done chan struct{} // closed when a run trips a limit; the state is then dropped

	base      *lua.LTable // fallback of every run's globals (read-only)
	envMeta   *lua.LTable // metatable of every run's globals
	protected map[*lua.LTable]struct{}
	libs      map[string]*lua.LTable // require-able read-only libraries and modules
	roNewIdx  *lua.LFunction

	jsonNull  *lua.LUserData
	arrayMeta *lua.LTable
	errMeta   *lua.LTable
	loading   *lua.LUserData // package.loaded marker while a module loads

	orig struct {
		pcall, xpcall, coCreate, coResume lua.LGFunction
		tinsert, tremove, tsort           lua.LGFunction
		format                            lua.LGFunction
	}

	run    *run
	broken bool

	// Reused by the memory walker (see measure).
	walkSeen    map[any]struct{}
	walkStrings map[*byte]struct{}
	walkWork    []lua.LValue
}

// newVMState builds a sandboxed Lua state.
func newVMState(e *Engine) (vs *vmState, err error) {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:     true,
		CallStackSize:    e.limits.CallDepth,
		RegistrySize:     256,
		RegistryGrowStep: 256,
		RegistryMaxSize:  e.limits.StackSlots,
	})
	defer func() {
		if r := recover(); r != nil {
			L.Close()
			vs, err = nil, fmt.Errorf("runtime: building a Lua state: %v", r)
		}
	}()
	vs = &vmState{
		eng:       e,
		L:         L,
		done:      make(chan struct{}),
		protected: make(map[*lua.LTable]struct{}),
		libs:      make(map[string]*lua.LTable),
	}
	vs.setup()
	return vs, nil
}

func (vs *vmState) close() { vs.L.Close() }

// stdlib opens the gopher-lua libraries into the (throwaway) global table
// and returns it; the sandbox copies what it keeps.
func (vs *vmState) stdlib() *lua.LTable {
	L := vs.L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
		{lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	return L.G.Global
}

func gfunc(t *lua.LTable, name string) lua.LGFunction {
	if f, ok := t.RawGetString(name).(*lua.LFunction); ok && f.IsG {
		return f.GFunction
	}
	panic("gopher-lua has no " + name)
}

// copyFields copies the named fields of src into a new table.
func (vs *vmState) copyFields(src *lua.LTable, names ...string) *lua.LTable {
	t := vs.L.NewTable()
	for _, n := range names {
		t.RawSetString(n, src.RawGetString(n))
	}
	return t
}

func (vs *vmState) setup() {
	L := vs.L
	g := vs.stdlib()
	str := g.RawGetString("string").(*lua.LTable)
	tbl := g.RawGetString("table").(*lua.LTable)
	mth := g.RawGetString("math").(*lua.LTable)
	osl := g.RawGetString("os").(*lua.LTable)
	co := g.RawGetString("coroutine").(*lua.LTable)

	vs.orig.pcall = gfunc(g, "pcall")
	vs.orig.xpcall = gfunc(g, "xpcall")
	vs.orig.coCreate = gfunc(co, "create")
	vs.orig.coResume = gfunc(co, "resume")
	vs.orig.tinsert = gfunc(tbl, "insert")
	vs.orig.tremove = gfunc(tbl, "remove")
	vs.orig.tsort = gfunc(tbl, "sort")
	vs.orig.format = gfunc(str, "format")

	vs.roNewIdx = L.NewFunction(func(L *lua.LState) int {
		name := "?"
		if mt, ok := L.Get(1).(*lua.LTable); ok {
			if m, ok := mt.Metatable.(*lua.LTable); ok {
				name = lua.LVAsString(m.RawGetString("__name"))
			}
		}
		L.RaiseError("attempt to modify read-only table '%s'", name)
		return 0
	})

	// string: the real table is the hidden __index of the string type; the
	// global `string` is a read-only proxy of it.
	realStr := vs.copyFields(str, "byte", "char", "len", "lower", "reverse", "sub", "upper")
	realStr.RawSetString("find", L.NewFunction(vs.strFind))
	realStr.RawSetString("match", L.NewFunction(vs.strMatch))
	realStr.RawSetString("gmatch", L.NewFunction(vs.strGmatch))
	realStr.RawSetString("rep", L.NewFunction(vs.strRep))
	realStr.RawSetString("format", L.NewFunction(vs.strFormat))
	realStr.RawSetString("gsub", L.NewFunction(vs.strGsub))
	realStr.RawSetString(concatMethod, L.NewFunction(vs.concat))
	strMeta := L.NewTable()
	strMeta.RawSetString("__index", realStr)
	strMeta.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(lua.LString(""), strMeta)
	vs.protect(strMeta)

	realTbl := vs.copyFields(tbl, "getn", "maxn")
	realTbl.RawSetString("concat", L.NewFunction(vs.tableConcat))
	realTbl.RawSetString("insert", L.NewFunction(vs.guarded(vs.orig.tinsert)))
	realTbl.RawSetString("remove", L.NewFunction(vs.guarded(vs.orig.tremove)))
	realTbl.RawSetString("sort", L.NewFunction(vs.guarded(vs.orig.tsort)))

	realMath := L.NewTable()
	mth.ForEach(func(k, v lua.LValue) { realMath.RawSet(k, v) })
	realMath.RawSetString("random", L.NewFunction(vs.mathRandom))
	realMath.RawSetString("randomseed", L.NewFunction(vs.mathRandomseed))

	realOS := vs.copyFields(osl, "time", "date", "clock")

	realCo := vs.copyFields(co, "yield", "status", "running")
	realCo.RawSetString("create", L.NewFunction(vs.coCreate))
	realCo.RawSetString("resume", L.NewFunction(vs.coResume))
	realCo.RawSetString("wrap", L.NewFunction(vs.coWrap))

	base := vs.copyFields(g, "assert", "error", "getmetatable", "ipairs", "next", "pairs",
		"rawequal", "rawget", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "_VERSION")
	base.RawSetString("pcall", L.NewFunction(vs.pcall))
	base.RawSetString("xpcall", L.NewFunction(vs.xpcall))
	base.RawSetString("rawset", L.NewFunction(vs.rawset))
	base.RawSetString("load", L.NewFunction(vs.load))
	base.RawSetString("loadstring", L.NewFunction(vs.loadstring))
	base.RawSetString("print", L.NewFunction(vs.print))
	base.RawSetString("require", L.NewFunction(vs.require))
	for name, real := range map[string]*lua.LTable{
		"string": realStr, "table": realTbl, "math": realMath, "os": realOS, "coroutine": realCo,
	} {
		p := vs.readOnly(name, real)
		base.RawSetString(name, p)
		vs.libs[name] = p
	}
	// Per-run globals (_G, input, package) are served by a function behind
	// the base table, so a run's global table can start empty.
	baseMeta := L.NewTable()
	baseMeta.RawSetString("__index", L.NewFunction(vs.runGlobal))
	baseMeta.RawSetString("__metatable", lua.LFalse)
	base.Metatable = baseMeta
	vs.protect(base, baseMeta)
	vs.base = base

	vs.envMeta = L.NewTable()
	vs.envMeta.RawSetString("__index", base)
	vs.envMeta.RawSetString("__metatable", lua.LFalse)
	vs.protect(vs.envMeta)

	vs.jsonNull = L.NewUserData()
	vs.loading = L.NewUserData()
	vs.arrayMeta = L.NewTable()
	vs.arrayMeta.RawSetString("__metatable", lua.LString("json.array"))
	vs.errMeta = L.NewTable()
	vs.errMeta.RawSetString("__tostring", L.NewFunction(errToString))
	vs.errMeta.RawSetString("__metatable", lua.LFalse)
	vs.protect(vs.arrayMeta, vs.errMeta)

	// Nothing of the stock global table stays reachable.
	g.ForEach(func(k, _ lua.LValue) { g.RawSet(k, lua.LNil) })
	vs.protect(g)
}

// protect marks tables that scripts must never modify.
func (vs *vmState) protect(ts ...*lua.LTable) {
	for _, t := range ts {
		vs.protected[t] = struct{}{}
	}
}

func (vs *vmState) isProtected(v lua.LValue) bool {
	t, ok := v.(*lua.LTable)
	if !ok {
		return false
	}
	_, p := vs.protected[t]
	return p
}

// readOnly returns a read-only proxy of real: an empty table whose
// metatable reads from real and refuses writes. Nested tables are proxied
// too.
func (vs *vmState) readOnly(name string, real *lua.LTable) *lua.LTable {
	L := vs.L
	real.ForEach(func(k, v lua.LValue) {
		if t, ok := v.(*lua.LTable); ok && !vs.isProtected(t) {
			real.RawSet(k, vs.readOnly(name+"."+lua.LVAsString(k), t))
		}
	})
	mt := L.NewTable()
	mt.RawSetString("__index", real)
	mt.RawSetString("__newindex", vs.roNewIdx)
	mt.RawSetString("__metatable", lua.LFalse)
	mt.RawSetString("__name", lua.LString(name))
	p := L.NewTable()
	p.Metatable = mt
	vs.protect(p, mt, real)
	return p
}

// runGlobal serves the per-run globals behind the base table.
func (vs *vmState) runGlobal(L *lua.LState) int {
	r := vs.run
	key, ok := L.Get(2).(lua.LString)
	if r == nil || !ok {
		return 0
	}
	switch key {
	case "_G":
		L.Push(r.env)
	case "input":
		L.Push(r.input)
	case "package":
		L.Push(r.packageTable(L))
	default:
		return 0
	}
	return 1
}

// guarded wraps a table-library function so it refuses read-only tables.
func (vs *vmState) guarded(fn lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if vs.isProtected(L.Get(1)) {
			L.RaiseError("attempt to modify a read-only table")
		}
		return fn(L)
	}
}

func (vs *vmState) rawset(L *lua.LState) int {
	t := L.CheckTable(1)
	if vs.isProtected(t) {
		L.RaiseError("attempt to modify a read-only table")
	}
	L.RawSet(t, L.CheckAny(2), L.CheckAny(3))
	L.SetTop(1)
	return 1
}

// afterProtected runs after pcall, xpcall and coroutine.resume returned n
// values: a limit error, or a stack overflow (which trips call_depth),
// is re-raised so scripts cannot swallow it.
func (vs *vmState) afterProtected(L *lua.LState, n int) {
	r := vs.run
	if r == nil {
		return
	}
	if r.tripped == nil && n >= 2 && L.Get(-n) == lua.LFalse {
		if msg, ok := L.Get(-n + 1).(lua.LString); ok {
			vs.overflowLimit(r, string(msg))
		}
	}
	if r.tripped != nil {
		r.raiseTripped(L)
	}
}

// overflowLimit trips call_depth or stack for gopher-lua's overflow errors.
func (vs *vmState) overflowLimit(r *run, msg string) {
	switch {
	case strings.HasSuffix(msg, "stack overflow"):
		r.trip(LimitCallDepth, fmt.Sprintf("more than %d nested calls", vs.eng.limits.CallDepth))
	case strings.HasSuffix(msg, "registry overflow"):
		r.trip(LimitStack, fmt.Sprintf("more than %d stack slots", vs.eng.limits.StackSlots))
	}
}

func (vs *vmState) pcall(L *lua.LState) int {
	n := vs.orig.pcall(L)
	vs.afterProtected(L, n)
	return n
}

func (vs *vmState) xpcall(L *lua.LState) int {
	n := vs.orig.xpcall(L)
	vs.afterProtected(L, n)
	return n
}

func (vs *vmState) coCreate(L *lua.LState) int {
	r := vs.run
	if r != nil {
		r.coroutines++
		if r.coroutines > vs.eng.limits.Coroutines {
			r.tripAndRaise(L, LimitCoroutines, fmt.Sprintf("more than %d coroutines", vs.eng.limits.Coroutines))
		}
	}
	n := vs.orig.coCreate(L)
	if th, ok := L.Get(-1).(*lua.LState); ok && r != nil {
		// The thread got a derived context; give it the run itself so its
		// instructions are counted and checked like the main thread's.
		th.SetContext(r)
	}
	return n
}

func (vs *vmState) coResume(L *lua.LState) int {
	n := vs.orig.coResume(L)
	vs.afterProtected(L, n)
	return n
}

func (vs *vmState) coWrap(L *lua.LState) int {
	L.CheckFunction(1)
	vs.coCreate(L)
	th := L.Get(-1)
	L.Pop(1)
	L.Push(L.NewClosure(vs.wrapResume, th))
	return 1
}

// wrapResume is the function coroutine.wrap returns: it resumes the thread
// and raises its error instead of returning false.
func (vs *vmState) wrapResume(L *lua.LState) int {
	L.Insert(L.Get(lua.UpvalueIndex(1)), 1)
	n := vs.coResume(L)
	top := L.GetTop()
	first := top - n + 1
	if L.Get(first) == lua.LFalse {
		L.Error(L.Get(first+1), 0)
	}
	L.Remove(first)
	return n - 1
}

func (vs *vmState) print(L *lua.LState) int {
	r := vs.run
	if r == nil {
		return 0
	}
	parts := make([]string, L.GetTop())
	for i := range parts {
		parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
	}
	r.log("info", strings.Join(parts, "\t"), nil)
	return 0
}

// load compiles text chunks only, with the run's globals (or env) as
// their environment. chunk is a string or a reader function.
func (vs *vmState) load(L *lua.LState) int {
	r := vs.run
	var src string
	switch c := L.Get(1).(type) {
	case lua.LString:
		src = string(c)
	case *lua.LFunction:
		var b strings.Builder
		for {
			L.Push(c)
			L.Call(0, 1)
			piece := L.Get(-1)
			L.Pop(1)
			s, ok := piece.(lua.LString)
			if piece == lua.LNil || (ok && len(s) == 0) {
				break
			}
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("reader function must return a string"))
				return 2
			}
			if r != nil {
				r.reserve(L, int64(b.Len()+len(s)))
			}
			b.WriteString(string(s))
		}
		src = b.String()
	default:
		L.ArgError(1, "string or function expected")
	}
	name := L.OptString(2, "=(load)")
	mode := L.OptString(3, "bt")
	var env *lua.LTable
	if t, ok := L.Get(4).(*lua.LTable); ok {
		env = t
	}
	return vs.compileChunk(L, src, strings.TrimPrefix(name, "="), mode, env)
}

func (vs *vmState) loadstring(L *lua.LState) int {
	return vs.compileChunk(L, L.CheckString(1), L.OptString(2, "<string>"), "t", nil)
}

func (vs *vmState) compileChunk(L *lua.LState, src, name, mode string, env *lua.LTable) int {
	if strings.HasPrefix(src, "\x1b") {
		L.Push(lua.LNil)
		L.Push(lua.LString("attempt to load a binary chunk (binary chunks are not allowed)"))
		return 2
	}
	if !strings.Contains(mode, "t") {
		L.Push(lua.LNil)
		L.Push(lua.LString(fmt.Sprintf("attempt to load a text chunk (mode is '%s')", mode)))
		return 2
	}
	proto, err := Compile(name, src)
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	fn := L.NewFunctionFromProto(proto)
	switch {
	case env != nil:
		fn.Env = env
	case vs.run != nil:
		fn.Env = vs.run.env
	}
	L.Push(fn)
	return 1
}

// errToString is the __tostring of host-module error tables.
func errToString(L *lua.LState) int {
	t := L.CheckTable(1)
	L.Push(lua.LString(fmt.Sprintf("%s: %s: %s",
		lua.LVAsString(t.RawGetString("module")),
		lua.LVAsString(t.RawGetString("code")),
		lua.LVAsString(t.RawGetString("message")))))
	return 1
}

// raise raises a host-module error table {module, code, message}.
func (vs *vmState) raise(L *lua.LState, mod, code, msg string) {
	if r := vs.run; r != nil {
		msg = r.redactText(msg)
	}
	t := L.NewTable()
	t.RawSetString("module", lua.LString(mod))
	t.RawSetString("code", lua.LString(code))
	t.RawSetString("message", lua.LString(msg))
	t.Metatable = vs.errMeta
	L.Error(t, 1)
}
