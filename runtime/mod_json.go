package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// hostRun returns the run executing L; host functions are only callable
// inside runs.
func hostRun(L *lua.LState) *run {
	r, ok := L.Context().(*run)
	if !ok {
		L.RaiseError("host module called outside a run")
	}
	return r
}

func setFuncs(L *lua.LState, t *lua.LTable, funcs map[string]lua.LGFunction) *lua.LTable {
	for name, f := range funcs {
		t.RawSetString(name, L.NewFunction(f))
	}
	return t
}

// openJSON builds the json module:
//
//	local json = require("json")
//	local s = json.encode({id = 7, tags = json.array()})  --> {"id":7,"tags":[]}
//	local v = json.decode('{"a":null,"b":[1,2]}')        --> v.a == json.null, #v.b == 2
func openJSON(L *lua.LState) *lua.LTable {
	vs := stateOfOpen(L)
	t := setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"encode":   jsonEncode,
		"decode":   jsonDecode,
		"array":    jsonArray,
		"as_array": jsonAsArray,
		"is_array": jsonIsArray,
	})
	t.RawSetString("null", vs.jsonNull)
	return t
}

// stateOfOpen finds the sandbox state while a module is being opened
// (always inside a run's require).
func stateOfOpen(L *lua.LState) *vmState {
	vs := stateOf(L)
	if vs == nil {
		L.RaiseError("module opened outside a run")
	}
	return vs
}

func jsonEncode(L *lua.LState) int {
	r := hostRun(L)
	v := L.CheckAny(1)
	enc := jsonEncoder{vs: r.vs, max: int(r.limits.MaxStringBytes)}
	if err := enc.value(v, 0); err != nil {
		code := "invalid_argument"
		if err == errTooLarge {
			code = "too_large"
		}
		r.vs.raise(L, "json", code, "encode: "+err.Error())
	}
	r.reserve(L, int64(enc.buf.Len()))
	L.Push(lua.LString(enc.buf.String()))
	return 1
}

type jsonEncoder struct {
	vs  *vmState
	buf bytes.Buffer
	max int
}

func (e *jsonEncoder) value(v lua.LValue, depth int) error {
	if depth > maxConvertDepth {
		return fmt.Errorf("nested deeper than %d (or a cycle)", maxConvertDepth)
	}
	if e.buf.Len() > e.max {
		return errTooLarge
	}
	switch x := v.(type) {
	case *lua.LNilType:
		e.buf.WriteString("null")
	case lua.LBool:
		if x {
			e.buf.WriteString("true")
		} else {
			e.buf.WriteString("false")
		}
	case lua.LNumber:
		s, err := formatNumber(x)
		if err != nil {
			return err
		}
		e.buf.WriteString(s)
	case lua.LString:
		writeJSONString(&e.buf, string(x))
	case *lua.LUserData:
		if x != e.vs.jsonNull {
			return fmt.Errorf("cannot encode a userdata")
		}
		e.buf.WriteString("null")
	case *lua.LTable:
		if n, ok := e.vs.arrayLen(x); ok {
			e.buf.WriteByte('[')
			for i := 1; i <= n; i++ {
				if i > 1 {
					e.buf.WriteByte(',')
				}
				if err := e.value(x.RawGetInt(i), depth+1); err != nil {
					return err
				}
			}
			e.buf.WriteByte(']')
			return nil
		}
		fields, err := sortedPairs(x)
		if err != nil {
			return err
		}
		e.buf.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			writeJSONString(&e.buf, f.key)
			e.buf.WriteByte(':')
			if err := e.value(f.value, depth+1); err != nil {
				return err
			}
		}
		e.buf.WriteByte('}')
	default:
		return fmt.Errorf("cannot encode a %s", v.Type().String())
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20 || c == 0x7f:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

func jsonDecode(L *lua.LState) int {
	r := hostRun(L)
	s := L.CheckString(1)
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		r.vs.raise(L, "json", "decode", err.Error())
	}
	if dec.More() {
		r.vs.raise(L, "json", "decode", fmt.Sprintf("trailing data at offset %d", dec.InputOffset()))
	}
	lv, err := r.vs.jsonToLua(L, v, 0)
	if err != nil {
		r.vs.raise(L, "json", "invalid_argument", err.Error())
	}
	L.Push(lv)
	return 1
}

// jsonToLua converts decoded JSON; null becomes json.null.
func (vs *vmState) jsonToLua(L *lua.LState, v any, depth int) (lua.LValue, error) {
	if depth > maxConvertDepth {
		return lua.LNil, fmt.Errorf("nested deeper than %d", maxConvertDepth)
	}
	switch x := v.(type) {
	case nil:
		return vs.jsonNull, nil
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			lv, err := vs.jsonToLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			lv, err := vs.jsonToLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.Append(lv)
		}
		t.Metatable = vs.arrayMeta
		return t, nil
	}
	return vs.toLua(L, v, depth)
}

func jsonArray(L *lua.LState) int {
	if L.Get(1) == lua.LNil {
		L.SetTop(0)
		L.Push(L.NewTable())
	}
	return jsonAsArray(L)
}

func jsonAsArray(L *lua.LState) int {
	r := hostRun(L)
	t := L.CheckTable(1)
	if r.vs.isProtected(t) {
		L.RaiseError("attempt to modify a read-only table")
	}
	if t.Metatable != lua.LNil && t.Metatable != r.vs.arrayMeta {
		r.vs.raise(L, "json", "invalid_argument", "as_array: table already has a metatable")
	}
	t.Metatable = r.vs.arrayMeta
	L.Push(t)
	return 1
}

func jsonIsArray(L *lua.LState) int {
	r := hostRun(L)
	t, ok := L.Get(1).(*lua.LTable)
	if !ok {
		L.Push(lua.LFalse)
		return 1
	}
	_, isArr := r.vs.arrayLen(t)
	L.Push(lua.LBool(isArr))
	return 1
}
