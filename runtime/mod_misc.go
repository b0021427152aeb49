package runtime

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // time.format/parse zones must not depend on the host's tzdata

	"github.com/google/uuid"
	lua "github.com/yuin/gopher-lua"
)

// openCrypto builds the crypto module:
//
//	local crypto = require("crypto")
//	crypto.sha256("abc")                 --> "ba7816bf..."
//	crypto.hmac_sha256("key", "message") --> hex digest
//	crypto.base64_encode("hi")           --> "aGk="
//	crypto.uuid()                        --> "5f0c...-4...-..."
func openCrypto(L *lua.LState) *lua.LTable {
	return setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"sha256": func(L *lua.LState) int {
			sum := sha256.Sum256([]byte(L.CheckString(1)))
			L.Push(lua.LString(hex.EncodeToString(sum[:])))
			return 1
		},
		"hmac_sha256": func(L *lua.LState) int {
			m := hmac.New(sha256.New, []byte(L.CheckString(1)))
			m.Write([]byte(L.CheckString(2)))
			L.Push(lua.LString(hex.EncodeToString(m.Sum(nil))))
			return 1
		},
		"base64_encode": func(L *lua.LState) int {
			r := hostRun(L)
			s := L.CheckString(1)
			enc := base64.StdEncoding
			if L.OptString(2, "") == "url" {
				enc = base64.RawURLEncoding
			}
			r.reserve(L, int64(enc.EncodedLen(len(s))))
			L.Push(lua.LString(enc.EncodeToString([]byte(s))))
			return 1
		},
		"base64_decode": func(L *lua.LState) int {
			r := hostRun(L)
			s := strings.TrimRight(L.CheckString(1), "=")
			enc := base64.RawStdEncoding
			if L.OptString(2, "") == "url" {
				enc = base64.RawURLEncoding
			}
			b, err := enc.DecodeString(s)
			if err != nil {
				r.vs.raise(L, "crypto", "decode", "base64: "+err.Error())
			}
			L.Push(lua.LString(b))
			return 1
		},
		"hex_encode": func(L *lua.LState) int {
			r := hostRun(L)
			s := L.CheckString(1)
			r.reserve(L, int64(2*len(s)))
			L.Push(lua.LString(hex.EncodeToString([]byte(s))))
			return 1
		},
		"hex_decode": func(L *lua.LState) int {
			r := hostRun(L)
			b, err := hex.DecodeString(L.CheckString(1))
			if err != nil {
				r.vs.raise(L, "crypto", "decode", "hex: "+err.Error())
			}
			L.Push(lua.LString(b))
			return 1
		},
		"random_bytes": func(L *lua.LState) int {
			r := hostRun(L)
			n := L.CheckInt(1)
			if n < 1 || n > 1024 {
				r.vs.raise(L, "crypto", "invalid_argument", "random_bytes: n must be 1..1024")
			}
			b := make([]byte, n)
			if _, err := rand.Read(b); err != nil {
				r.vs.raise(L, "crypto", "backend", err.Error())
			}
			L.Push(lua.LString(b))
			return 1
		},
		"uuid": func(L *lua.LState) int {
			L.Push(lua.LString(uuid.NewString()))
			return 1
		},
	})
}

// openURL builds the url module:
//
//	local url = require("url")
//	url.build_query({b = {1, 2}, a = "x y"}) --> "a=x+y&b=1&b=2"
//	url.parse_query("a=1&a=2&b=x")          --> {a = {"1", "2"}, b = "x"}
func openURL(L *lua.LState) *lua.LTable {
	return setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"escape": func(L *lua.LState) int {
			L.Push(lua.LString(url.QueryEscape(L.CheckString(1))))
			return 1
		},
		"unescape": func(L *lua.LState) int {
			r := hostRun(L)
			s, err := url.QueryUnescape(L.CheckString(1))
			if err != nil {
				r.vs.raise(L, "url", "decode", err.Error())
			}
			L.Push(lua.LString(s))
			return 1
		},
		"path_escape": func(L *lua.LState) int {
			L.Push(lua.LString(url.PathEscape(L.CheckString(1))))
			return 1
		},
		"build_query": urlBuildQuery,
		"parse_query": urlParseQuery,
	})
}

func urlBuildQuery(L *lua.LState) int {
	r := hostRun(L)
	fields, err := sortedPairs(L.CheckTable(1))
	if err != nil {
		r.vs.raise(L, "url", "invalid_argument", "build_query: "+err.Error())
	}
	var b strings.Builder
	add := func(k string, v lua.LValue) {
		var s string
		switch x := v.(type) {
		case lua.LString, lua.LNumber:
			s = lua.LVAsString(x)
		case lua.LBool:
			s = x.String()
		default:
			r.vs.raise(L, "url", "invalid_argument", fmt.Sprintf("build_query: value of %q is a %s", k, v.Type().String()))
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(s))
		if int64(b.Len()) > r.limits.MaxStringBytes {
			r.reserve(L, int64(b.Len()))
		}
	}
	for _, f := range fields {
		if t, ok := f.value.(*lua.LTable); ok {
			for i := 1; i <= t.Len(); i++ {
				add(f.key, t.RawGetInt(i))
			}
			continue
		}
		add(f.key, f.value)
	}
	L.Push(lua.LString(b.String()))
	return 1
}

func urlParseQuery(L *lua.LState) int {
	r := hostRun(L)
	q, err := url.ParseQuery(L.CheckString(1))
	if err != nil {
		r.vs.raise(L, "url", "decode", err.Error())
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := L.CreateTable(0, len(q))
	for _, k := range keys {
		vals := q[k]
		if len(vals) == 1 {
			out.RawSetString(k, lua.LString(vals[0]))
			continue
		}
		list := L.CreateTable(len(vals), 0)
		for _, v := range vals {
			list.Append(lua.LString(v))
		}
		out.RawSetString(k, list)
	}
	L.Push(out)
	return 1
}

// timeLayout maps the time module's layout names to Go layouts.
func timeLayout(name string) (string, bool) {
	switch name {
	case "iso":
		return time.RFC3339, true
	case "yyyyMMddHHmmss":
		return "20060102150405", true
	case "yyyyMMdd":
		return "20060102", true
	}
	return "", false
}

// openTime builds the time module:
//
//	local time = require("time")
//	time.format(0, "iso")                                   --> "1970-01-01T00:00:00Z"
//	time.format(0, "yyyyMMddHHmmss", "Asia/Hong_Kong")      --> "19700101080000"
//	time.parse("20240501", "yyyyMMdd", "+08:00")            --> 1714492800
func openTime(L *lua.LState) *lua.LTable {
	return setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"now": func(L *lua.LState) int {
			L.Push(lua.LNumber(time.Now().Unix()))
			return 1
		},
		"now_ms": func(L *lua.LState) int {
			L.Push(lua.LNumber(time.Now().UnixMilli()))
			return 1
		},
		"format":    timeFormat,
		"parse":     timeParse,
		"sleep":     timeSleep,
		"remaining": timeRemaining,
	})
}

// timeSleep pauses the run for a number of seconds (fractions allowed),
// e.g. between retries. It never outlives the run: sleeping past the
// deadline stops the run with the timeout limit, and a cancelled run wakes
// at once.
func timeSleep(L *lua.LState) int {
	r := hostRun(L)
	secs := float64(L.CheckNumber(1))
	if secs < 0 || secs != secs {
		r.vs.raise(L, "time", "invalid_argument", "sleep needs a number of seconds >= 0")
	}
	d := time.Duration(secs * float64(time.Second))
	if secs > float64(24*time.Hour/time.Second) {
		d = 24 * time.Hour
	}
	if time.Now().Add(d).After(r.deadline) {
		d = time.Until(r.deadline)
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.blocking().Done():
	}
	r.check()
	if r.tripped != nil {
		r.raiseTripped(L)
	}
	return 0
}

// timeRemaining returns the seconds left before the run's deadline.
func timeRemaining(L *lua.LState) int {
	r := hostRun(L)
	L.Push(lua.LNumber(max(0, time.Until(r.deadline).Seconds())))
	return 1
}

func timeArgs(L *lua.LState, r *run) (layout string, loc *time.Location) {
	name := L.CheckString(2)
	layout, ok := timeLayout(name)
	if !ok {
		r.vs.raise(L, "time", "invalid_argument", fmt.Sprintf("unknown layout %q (want iso, yyyyMMddHHmmss or yyyyMMdd)", name))
	}
	loc, err := parseZone(L.OptString(3, "UTC"))
	if err != nil {
		r.vs.raise(L, "time", "invalid_argument", err.Error())
	}
	return layout, loc
}

// parseZone accepts an IANA zone name or a fixed offset like "+08:00".
func parseZone(tz string) (*time.Location, error) {
	if tz == "" || tz == "UTC" || tz == "Z" {
		return time.UTC, nil
	}
	if tz[0] == '+' || tz[0] == '-' {
		t, err := time.Parse("-07:00", tz)
		if err != nil {
			return nil, fmt.Errorf("bad offset %q (want +hh:mm)", tz)
		}
		_, off := t.Zone()
		return time.FixedZone(tz, off), nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", tz)
	}
	return loc, nil
}

func timeFormat(L *lua.LState) int {
	r := hostRun(L)
	ts := float64(L.CheckNumber(1))
	layout, loc := timeArgs(L, r)
	sec := int64(ts)
	t := time.Unix(sec, int64((ts-float64(sec))*1e9)).In(loc)
	L.Push(lua.LString(t.Format(layout)))
	return 1
}

func timeParse(L *lua.LState) int {
	r := hostRun(L)
	s := L.CheckString(1)
	layout, loc := timeArgs(L, r)
	if layout == time.RFC3339 {
		layout = time.RFC3339Nano
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		r.vs.raise(L, "time", "decode", err.Error())
	}
	if t.Nanosecond() == 0 {
		L.Push(lua.LNumber(t.Unix()))
	} else {
		L.Push(lua.LNumber(float64(t.UnixNano()) / 1e9))
	}
	return 1
}

// openLog builds the log module:
//
//	local log = require("log")
//	log.info("provisioned", {account = id, attempt = 2})
func openLog(L *lua.LState) *lua.LTable {
	t := L.NewTable()
	for _, level := range []string{"debug", "info", "warn", "error"} {
		t.RawSetString(level, L.NewFunction(logFunc(level)))
	}
	return t
}

func logFunc(level string) lua.LGFunction {
	return func(L *lua.LState) int {
		r := hostRun(L)
		msg := L.ToStringMeta(L.CheckAny(1)).String()
		var fields map[string]any
		if t, ok := L.Get(2).(*lua.LTable); ok {
			v, err := r.vs.fromLua(t, r.limits.LogBytes)
			if err != nil {
				r.vs.raise(L, "log", "invalid_argument", "fields: "+err.Error())
			}
			m, ok := v.(map[string]any)
			if !ok {
				m = map[string]any{"fields": v}
			}
			fields = m
		}
		r.log(level, msg, fields)
		return 0
	}
}

// openKV builds the kv module:
//
//	local kv = require("kv")
//	kv.set("account:" .. id, "active")
//	local v = kv.get("account:" .. id)        --> "active" or nil
//	for _, e in ipairs(kv.list("account:")) do log.info(e.key .. "=" .. e.value) end
func openKV(L *lua.LState) *lua.LTable {
	return setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"get": func(L *lua.LState) int {
			r, store := kvStore(L)
			key := kvKey(L, r)
			v, ok, err := store.Get(r.blocking(), r.opts.KVScope, key)
			if err != nil {
				r.vs.raise(L, "kv", "backend", err.Error())
			}
			if !ok {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LString(v))
			return 1
		},
		"set": func(L *lua.LState) int {
			r, store := kvStore(L)
			key := kvKey(L, r)
			val := L.Get(2)
			if !canConcat(val) {
				r.vs.raise(L, "kv", "invalid_argument", "set: value must be a string")
			}
			s := lua.LVAsString(val)
			if len(s) > MaxKVValueBytes {
				r.vs.raise(L, "kv", "too_large", fmt.Sprintf("value over %d bytes", MaxKVValueBytes))
			}
			if err := store.Set(r.blocking(), r.opts.KVScope, key, s); err != nil {
				r.vs.raise(L, "kv", "backend", err.Error())
			}
			return 0
		},
		"delete": func(L *lua.LState) int {
			r, store := kvStore(L)
			if err := store.Delete(r.blocking(), r.opts.KVScope, kvKey(L, r)); err != nil {
				r.vs.raise(L, "kv", "backend", err.Error())
			}
			return 0
		},
		"list": func(L *lua.LState) int {
			r, store := kvStore(L)
			prefix := L.OptString(1, "")
			limit := L.OptInt(2, 100)
			if limit < 1 || limit > MaxKVList {
				r.vs.raise(L, "kv", "invalid_argument", fmt.Sprintf("list: limit must be 1..%d", MaxKVList))
			}
			pairs, err := store.List(r.blocking(), r.opts.KVScope, prefix, limit)
			if err != nil {
				r.vs.raise(L, "kv", "backend", err.Error())
			}
			out := L.CreateTable(len(pairs), 0)
			for _, p := range pairs {
				e := L.CreateTable(0, 2)
				e.RawSetString("key", lua.LString(p.Key))
				e.RawSetString("value", lua.LString(p.Value))
				out.Append(e)
			}
			out.Metatable = r.vs.arrayMeta
			L.Push(out)
			return 1
		},
	})
}

func kvStore(L *lua.LState) (*run, KV) {
	r := hostRun(L)
	store := r.eng.opts.KV
	if store == nil || r.opts.KVScope == "" {
		r.vs.raise(L, "kv", "not_allowed", "no key/value store is configured for this run")
	}
	return r, store
}

func kvKey(L *lua.LState, r *run) string {
	key := L.CheckString(1)
	if len(key) == 0 || len(key) > MaxKVKeyBytes {
		r.vs.raise(L, "kv", "invalid_argument", fmt.Sprintf("key must be 1..%d bytes", MaxKVKeyBytes))
	}
	return key
}

// openSettings builds the settings module:
//
//	local settings = require("settings")
//	local key = settings.get("api_key") -- nil when not set
func openSettings(L *lua.LState) *lua.LTable {
	return setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"get": func(L *lua.LState) int {
			r := hostRun(L)
			v, ok := r.opts.Settings[L.CheckString(1)]
			if !ok {
				L.Push(lua.LNil)
				return 1
			}
			L.Push(lua.LString(v))
			return 1
		},
	})
}
