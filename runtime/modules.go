package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// ModuleResolver finds the source of a Lua module for require(name).
// ok is false when the resolver has no such module; err is for failures
// (e.g. a database error). version identifies the source (recorded in
// Record.Modules); it may be empty.
type ModuleResolver interface {
	Resolve(ctx context.Context, name string) (source, version string, ok bool, err error)
}

// ResolverFunc adapts a function to ModuleResolver.
type ResolverFunc func(ctx context.Context, name string) (source, version string, ok bool, err error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, name string) (string, string, bool, error) {
	return f(ctx, name)
}

// Chain returns a resolver that asks each resolver in order and returns
// the first module found: put operator modules before bundled ones.
func Chain(resolvers ...ModuleResolver) ModuleResolver {
	return ResolverFunc(func(ctx context.Context, name string) (string, string, bool, error) {
		for _, r := range resolvers {
			if r == nil {
				continue
			}
			src, ver, ok, err := r.Resolve(ctx, name)
			if err != nil || ok {
				return src, ver, ok, err
			}
		}
		return "", "", false, nil
	})
}

// MapResolver serves modules from a map of name to source (tests, tools).
// The version is the short sha256 of the source.
func MapResolver(modules map[string]string) ModuleResolver {
	return ResolverFunc(func(_ context.Context, name string) (string, string, bool, error) {
		src, ok := modules[name]
		if !ok {
			return "", "", false, nil
		}
		return src, sourceVersion(src), true, nil
	})
}

// FSResolver serves modules from fsys, e.g. the embedded scripts/ tree.
// Module "vcc" is read from "vcc/vcc.lua", else "vcc.lua"; a dotted name
// "vcc.util" from "vcc/util/util.lua", else "vcc/util.lua". The version is
// the short sha256 of the source.
func FSResolver(fsys fs.FS) ModuleResolver {
	return ResolverFunc(func(_ context.Context, name string) (string, string, bool, error) {
		if !ValidModuleName(name) {
			return "", "", false, nil
		}
		p := strings.ReplaceAll(name, ".", "/")
		for _, candidate := range []string{p + "/" + path.Base(p) + ".lua", p + ".lua"} {
			b, err := fs.ReadFile(fsys, candidate)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", "", false, fmt.Errorf("reading module %s: %w", name, err)
			}
			return string(b), sourceVersion(string(b)), true, nil
		}
		return "", "", false, nil
	})
}

func sourceVersion(src string) string {
	sum := sha256.Sum256([]byte(src))
	return hex.EncodeToString(sum[:6])
}

// ValidModuleName reports whether name can be a Lua module name: letters,
// digits, '_' and '-', joined by dots, at most 128 bytes.
func ValidModuleName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" {
			return false
		}
		for _, c := range part {
			if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// builtinModules are the host modules every engine has.
func builtinModules() map[string]HostModule {
	return map[string]HostModule{
		"json":     HostModuleFunc(openJSON),
		"http":     HostModuleFunc(openHTTP),
		"crypto":   HostModuleFunc(openCrypto),
		"url":      HostModuleFunc(openURL),
		"time":     HostModuleFunc(openTime),
		"log":      HostModuleFunc(openLog),
		"kv":       HostModuleFunc(openKV),
		"settings": HostModuleFunc(openSettings),
	}
}

// hostModule returns the read-only table of host module or library name,
// building it once per state.
func (vs *vmState) hostModule(name string) (*lua.LTable, bool) {
	if t, ok := vs.libs[name]; ok {
		return t, true
	}
	m, ok := vs.eng.modules[name]
	if !ok {
		return nil, false
	}
	t := vs.readOnly(name, m.Open(vs.L))
	vs.libs[name] = t
	return t, true
}

// stateOf returns the sandbox state of L (the state or one of its
// coroutines) from the current run.
func stateOf(L *lua.LState) *vmState {
	if r, ok := L.Context().(*run); ok {
		return r.vs
	}
	return nil
}

// require loads a host module, a library, or a Lua module from the
// resolver, once per run (package.loaded is per run).
func (vs *vmState) require(L *lua.LState) int {
	name := L.CheckString(1)
	r := vs.run
	if r == nil {
		L.RaiseError("require outside a run")
	}
	loaded := r.loadedTable(L)
	if v := loaded.RawGetString(name); v != lua.LNil {
		if v == vs.loading {
			L.RaiseError("loop or previous error loading module '%s'", name)
		}
		L.Push(v)
		return 1
	}
	if t, ok := vs.hostModule(name); ok {
		loaded.RawSetString(name, t)
		L.Push(t)
		return 1
	}
	res := vs.eng.opts.Resolver
	if r.opts.Resolver != nil {
		res = r.opts.Resolver
	}
	if res == nil || !ValidModuleName(name) {
		L.RaiseError("module '%s' not found", name)
	}
	src, version, ok, err := res.Resolve(r.blocking(), name)
	if err != nil {
		L.RaiseError("module '%s': %s", name, r.redactText(err.Error()))
	}
	if !ok {
		L.RaiseError("module '%s' not found", name)
	}
	proto, _, err := vs.eng.cache.get(name, src)
	if err != nil {
		L.RaiseError("module '%s': %s", name, err.Error())
	}
	if version != "" {
		r.modules = append(r.modules, name+"@"+version)
	} else {
		r.modules = append(r.modules, name)
	}
	fn := L.NewFunctionFromProto(proto)
	fn.Env = r.env
	loaded.RawSetString(name, vs.loading)
	L.Push(fn)
	L.Push(lua.LString(name))
	L.Call(1, 1)
	ret := L.Get(-1)
	L.Pop(1)
	if cur := loaded.RawGetString(name); cur != vs.loading {
		ret = cur // the module set package.loaded[name] itself
	} else if ret == lua.LNil {
		ret = lua.LTrue
	}
	loaded.RawSetString(name, ret)
	L.Push(ret)
	return 1
}
