package runtime

import (
	"context"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// trivialScript is the benchmark workload: read the input, build a result.
const trivialScript = `local input = ...
return {sum = input.a + input.b, name = input.name}`

func trivialInput() map[string]any {
	return map[string]any{"a": 1, "b": 2, "name": "x"}
}

// barePool is the baseline: pooled gopher-lua states with the stock
// libraries, no sandbox, no limits, the same input/result conversion.
type barePool struct {
	states chan *lua.LState
	proto  *lua.FunctionProto
}

func newBarePool(b *testing.B, n int) *barePool {
	chunk, err := parse.Parse(strings.NewReader(trivialScript), "bare")
	if err != nil {
		b.Fatal(err)
	}
	proto, err := lua.Compile(chunk, "bare")
	if err != nil {
		b.Fatal(err)
	}
	p := &barePool{states: make(chan *lua.LState, n), proto: proto}
	for i := 0; i < n; i++ {
		p.states <- lua.NewState()
	}
	b.Cleanup(func() {
		close(p.states)
		for L := range p.states {
			L.Close()
		}
	})
	return p
}

func (p *barePool) run(input map[string]any) (map[string]any, error) {
	L := <-p.states
	defer func() { p.states <- L }()
	in := L.CreateTable(0, len(input))
	for k, v := range input {
		switch x := v.(type) {
		case int:
			in.RawSetString(k, lua.LNumber(x))
		case string:
			in.RawSetString(k, lua.LString(x))
		}
	}
	L.Push(L.NewFunctionFromProto(p.proto))
	L.Push(in)
	if err := L.PCall(1, 1, nil); err != nil {
		return nil, err
	}
	ret := L.Get(-1)
	L.Pop(1)
	out := map[string]any{}
	if t, ok := ret.(*lua.LTable); ok {
		t.ForEach(func(k, v lua.LValue) {
			switch x := v.(type) {
			case lua.LNumber:
				out[k.String()] = numberToGo(x)
			default:
				out[k.String()] = v.String()
			}
		})
	}
	return out, nil
}

// BenchmarkTrivial compares a trivial script through the Engine with the
// same script on a bare pooled state. Compare ns/op and allocs/op of the
// engine and bare sub-benchmarks (the goal is ≤ 2×).
func BenchmarkTrivial(b *testing.B) {
	ctx := context.Background()
	script := Script{Name: "bench", Source: trivialScript}
	input := trivialInput()

	b.Run("engine", func(b *testing.B) {
		e := newTestEngine(b, Options{MinStates: 1, MaxStates: 1})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Run(ctx, script, input, RunOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		st := e.Stats().Cache
		b.ReportMetric(float64(st.Hits)/float64(st.Hits+st.Misses), "cache-hit-ratio")
	})
	b.Run("bare", func(b *testing.B) {
		p := newBarePool(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.run(input); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("engine-parallel", func(b *testing.B) {
		e := newTestEngine(b, Options{MinStates: 4, MaxStates: 4})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.Run(ctx, script, input, RunOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("bare-parallel", func(b *testing.B) {
		p := newBarePool(b, 4)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.run(input); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCompileCache measures a cache hit against a full compile.
func BenchmarkCompileCache(b *testing.B) {
	b.Run("hit", func(b *testing.B) {
		c := newProtoCache(16)
		c.get("x", trivialScript)
		b.ReportAllocs()
		for b.Loop() {
			if _, hit, _ := c.get("x", trivialScript); !hit {
				b.Fatal("miss")
			}
		}
	})
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Compile("x", trivialScript); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConcatLoop shows the cost of the checked `..` on a
// string-building loop.
func BenchmarkConcatLoop(b *testing.B) {
	e := newTestEngine(b, Options{MaxStates: 1})
	script := Script{Name: "concat", Source: `local s = "" for i = 1, 100 do s = s .. "x" end return {n = #s}`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Run(context.Background(), script, nil, RunOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
