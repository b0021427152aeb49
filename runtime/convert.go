package runtime

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// maxConvertDepth bounds nesting when converting values either way.
const maxConvertDepth = 64

// toLua converts a Go value to Lua: maps with string keys → tables,
// slices → array tables (nil elements → json.null), numbers, strings,
// []byte, bools; nil → nil.
func (vs *vmState) toLua(L *lua.LState, v any, depth int) (lua.LValue, error) {
	if depth > maxConvertDepth {
		return lua.LNil, fmt.Errorf("input nested deeper than %d", maxConvertDepth)
	}
	switch x := v.(type) {
	case nil:
		return lua.LNil, nil
	case lua.LValue:
		return x, nil
	case string:
		return lua.LString(x), nil
	case []byte:
		return lua.LString(x), nil
	case bool:
		return lua.LBool(x), nil
	case float64:
		return lua.LNumber(x), nil
	case int:
		return lua.LNumber(x), nil
	case int64:
		return lua.LNumber(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return lua.LNil, fmt.Errorf("number %q: %w", x, err)
		}
		return lua.LNumber(f), nil
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			lv, err := vs.toLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			if lv != lua.LNil {
				t.RawSetString(k, lv)
			}
		}
		return t, nil
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			lv, err := vs.toLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			if lv == lua.LNil {
				lv = vs.jsonNull
			}
			t.Append(lv)
		}
		t.Metatable = vs.arrayMeta
		return t, nil
	case map[string]string:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, lua.LString(e))
		}
		return t, nil
	}
	return vs.reflectToLua(L, v, depth)
}

func (vs *vmState) reflectToLua(L *lua.LState, v any, depth int) (lua.LValue, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return lua.LNumber(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return lua.LNumber(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return lua.LNumber(rv.Float()), nil
	case reflect.String:
		return lua.LString(rv.String()), nil
	case reflect.Bool:
		return lua.LBool(rv.Bool()), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return lua.LNil, nil
		}
		return vs.toLua(L, rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return lua.LNil, nil
		}
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		return vs.toLua(L, items, depth)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return lua.LNil, fmt.Errorf("map key type %s is not string", rv.Type().Key())
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return vs.toLua(L, m, depth)
	}
	return lua.LNil, fmt.Errorf("cannot pass a %T to Lua", v)
}

// fromLua converts a Lua value to Go (see the README table). budget is
// the remaining size allowance, measured like JSON; seen detects cycles.
//
// A cycle is reported as nesting deeper than maxConvertDepth.
type converter struct {
	vs     *vmState
	budget int
}

func (vs *vmState) fromLua(v lua.LValue, budget int) (any, error) {
	c := converter{vs: vs, budget: budget}
	return c.value(v, 0)
}

func (c *converter) spend(n int) error {
	c.budget -= n
	if c.budget < 0 {
		return errTooLarge
	}
	return nil
}

// errTooLarge marks a converted value over its size cap.
var errTooLarge = fmt.Errorf("%w: value too large", ErrResult)

func (c *converter) value(v lua.LValue, depth int) (any, error) {
	if depth > maxConvertDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d (or a table cycle)", ErrResult, maxConvertDepth)
	}
	switch x := v.(type) {
	case *lua.LNilType:
		return nil, c.spend(4)
	case lua.LBool:
		return bool(x), c.spend(5)
	case lua.LNumber:
		return numberToGo(x), c.spend(8)
	case lua.LString:
		return string(x), c.spend(len(x) + 2)
	case *lua.LUserData:
		if x == c.vs.jsonNull {
			return nil, c.spend(4)
		}
	case *lua.LTable:
		return c.table(x, depth)
	}
	return nil, fmt.Errorf("%w: cannot convert a Lua %s", ErrResult, v.Type().String())
}

// numberToGo returns an int64 for integral numbers within ±2^53, else a
// float64.
func numberToGo(n lua.LNumber) any {
	f := float64(n)
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int64(f)
	}
	return f
}

func (c *converter) table(t *lua.LTable, depth int) (any, error) {
	if err := c.spend(2); err != nil {
		return nil, err
	}
	if n, ok := c.vs.arrayLen(t); ok {
		out := make([]any, 0, n)
		for i := 1; i <= n; i++ {
			e, err := c.value(t.RawGetInt(i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	out := make(map[string]any)
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		var key string
		switch kk := k.(type) {
		case lua.LString:
			key = string(kk)
		case lua.LNumber:
			key = kk.String()
		default:
			err = fmt.Errorf("%w: table key of type %s", ErrResult, k.Type().String())
			return
		}
		if err = c.spend(len(key) + 4); err != nil {
			return
		}
		var e any
		if e, err = c.value(v, depth+1); err == nil {
			out[key] = e
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// arrayLen reports whether t is a list: keys exactly 1..n with n ≥ 1, or
// a table marked as an array (json.array), possibly empty.
//
// gopher-lua keeps every integer key 1..MaxArrayIndex-1 in a table's array
// part, so t is a list when its array part holds 1..n without holes and
// no key follows the n-th in iteration order.
func (vs *vmState) arrayLen(t *lua.LTable) (int, bool) {
	n := t.Len()
	for i := 1; i <= n; i++ {
		if t.RawGetInt(i) == lua.LNil {
			return 0, false
		}
	}
	var after lua.LValue = lua.LNil
	if n > 0 {
		after = lua.LNumber(n)
	}
	if k, _ := t.Next(after); k != lua.LNil {
		return 0, false
	}
	if n == 0 {
		return 0, t.Metatable == vs.arrayMeta
	}
	return n, true
}

// tableField is one key/value of a table with the key as a string.
type tableField struct {
	key   string
	value lua.LValue
}

// sortedPairs returns a table's entries sorted by key; number keys are
// written as Lua prints them, other key types are an error.
func sortedPairs(t *lua.LTable) ([]tableField, error) {
	var out []tableField
	var err error
	t.ForEach(func(k, v lua.LValue) {
		switch kk := k.(type) {
		case lua.LString:
			out = append(out, tableField{string(kk), v})
		case lua.LNumber:
			out = append(out, tableField{kk.String(), v})
		default:
			if err == nil {
				err = fmt.Errorf("table key of type %s", k.Type().String())
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, err
}

// formatNumber prints a Lua number like JSON: integers without fraction.
func formatNumber(n lua.LNumber) (string, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("cannot encode %v", f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10), nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}
