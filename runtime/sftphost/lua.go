package sftphost

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Env is what the Lua binding needs from the run calling it. The runtime
// adapter (Open) implements it with runtime.CurrentRun; tests may supply
// their own.
type Env interface {
	// Context is the run's context: its deadline bounds every call and its
	// end closes the run's connections.
	Context() context.Context
	// RaiseError raises a host-module error table {code, message} in L.
	// It does not return.
	RaiseError(L *lua.LState, code, message string)
	// HostAllowed reports whether the run may reach host:port, in addition
	// to Options.AllowedHosts.
	HostAllowed(host string, port int) bool
	// Reserve accounts n bytes against the run's memory limit, raising the
	// limit error in L when the run cannot afford them.
	Reserve(L *lua.LState, n int64)
}

// connUserDataType tags the userdata of an open connection.
const connUserDataType = "sftp.conn"

type luaConn struct {
	c *Conn
}

// runConns counts open connections per run context, for MaxConns.
type runConns struct {
	mu sync.Mutex
	n  map[context.Context]int
}

func (r *runConns) acquire(ctx context.Context, max int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n[ctx] >= max {
		return false
	}
	if r.n[ctx] == 0 {
		context.AfterFunc(ctx, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			delete(r.n, ctx)
		})
	}
	r.n[ctx]++
	return true
}

func (r *runConns) release(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n[ctx] > 0 {
		r.n[ctx]--
	}
}

// Table builds the module table for one Lua state. envOf finds the
// current run's Env; the table may serve many runs in turn.
func (m *Module) Table(L *lua.LState, envOf func(*lua.LState) Env) *lua.LTable {
	conns := &runConns{n: map[context.Context]int{}}
	methods := L.NewTable()
	meta := L.NewTable()
	meta.RawSetString("__index", methods)
	meta.RawSetString("__metatable", lua.LFalse)
	meta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		lc := checkConn(L, envOf)
		L.Push(lua.LString("sftp.conn(" + lc.c.addr + ")"))
		return 1
	}))

	raise := func(L *lua.LState, env Env, err error) {
		var se *Error
		if errors.As(err, &se) {
			env.RaiseError(L, se.Code, se.Message)
		}
		env.RaiseError(L, CodeTransport, err.Error())
	}

	methods.RawSetString("list", L.NewFunction(func(L *lua.LState) int {
		env := envOf(L)
		lc := checkConn(L, envOf)
		dir := L.CheckString(2)
		entries, err := lc.c.List(env.Context(), dir)
		if err != nil {
			raise(L, env, err)
		}
		t := L.CreateTable(len(entries), 0)
		for _, e := range entries {
			et := L.CreateTable(0, 5)
			et.RawSetString("name", lua.LString(e.Name))
			et.RawSetString("size", lua.LNumber(e.Size))
			et.RawSetString("mtime", lua.LNumber(e.ModTime.Unix()))
			et.RawSetString("is_dir", lua.LBool(e.IsDir))
			et.RawSetString("mode", lua.LString(strconv.FormatUint(uint64(e.Mode.Perm()), 8)))
			t.Append(et)
		}
		L.Push(t)
		return 1
	}))
	methods.RawSetString("get", L.NewFunction(func(L *lua.LState) int {
		env := envOf(L)
		lc := checkConn(L, envOf)
		p := L.CheckString(2)
		max := L.OptInt64(3, 0)
		data, err := lc.c.Get(env.Context(), p, max)
		if err != nil {
			raise(L, env, err)
		}
		env.Reserve(L, int64(len(data)))
		L.Push(lua.LString(data))
		return 1
	}))
	methods.RawSetString("close", L.NewFunction(func(L *lua.LState) int {
		lc := checkConn(L, envOf)
		_ = lc.c.Close()
		return 0
	}))

	mod := L.NewTable()
	mod.RawSetString("connect", L.NewFunction(func(L *lua.LState) int {
		env := envOf(L)
		opts := L.CheckTable(1)
		cfg, err := connectConfig(opts)
		if err != nil {
			raise(L, env, err)
		}
		ctx := env.Context()
		if !conns.acquire(ctx, m.opts.MaxConns) {
			env.RaiseError(L, CodeNotAllowed, "too many open sftp connections in this run (max "+strconv.Itoa(m.opts.MaxConns)+")")
		}
		c, err := m.connect(ctx, cfg, env.HostAllowed, func() { conns.release(ctx) })
		if err != nil {
			conns.release(ctx)
			raise(L, env, err)
		}
		ud := L.NewUserData()
		ud.Value = &luaConn{c: c}
		ud.Metatable = meta
		L.Push(ud)
		return 1
	}))
	return mod
}

func checkConn(L *lua.LState, envOf func(*lua.LState) Env) *luaConn {
	ud := L.CheckUserData(1)
	lc, ok := ud.Value.(*luaConn)
	if !ok {
		L.ArgError(1, connUserDataType+" expected (use c:method(...))")
	}
	return lc
}

// connectConfig reads sftp.connect's option table.
func connectConfig(t *lua.LTable) (ConnectConfig, error) {
	var cfg ConnectConfig
	var bad error
	str := func(name string) string {
		switch v := t.RawGetString(name).(type) {
		case lua.LString:
			return string(v)
		case *lua.LNilType:
			return ""
		default:
			if bad == nil {
				bad = errorf(CodeInvalidArgument, nil, "%s must be a string", name)
			}
			return ""
		}
	}
	num := func(name string) float64 {
		switch v := t.RawGetString(name).(type) {
		case lua.LNumber:
			return float64(v)
		case lua.LString:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil && bad == nil {
				bad = errorf(CodeInvalidArgument, nil, "%s must be a number", name)
			}
			return f
		case *lua.LNilType:
			return 0
		default:
			if bad == nil {
				bad = errorf(CodeInvalidArgument, nil, "%s must be a number", name)
			}
			return 0
		}
	}
	cfg.Host = str("host")
	cfg.Port = int(num("port"))
	cfg.User = str("user")
	cfg.Password = str("password")
	if k := str("private_key"); k != "" {
		cfg.PrivateKey = []byte(k)
	}
	if p := str("passphrase"); p != "" {
		cfg.Passphrase = []byte(p)
	}
	cfg.HostKey = str("host_key")
	cfg.HostKeyFingerprint = str("host_key_fingerprint")
	if s := num("timeout"); s > 0 {
		cfg.Timeout = time.Duration(s * float64(time.Second))
	}
	if s := num("op_timeout"); s > 0 {
		cfg.OpTimeout = time.Duration(s * float64(time.Second))
	}
	return cfg, bad
}
