package runtime

import (
	"runtime/metrics"
	"sync/atomic"
	"time"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Memory limit design.
//
// gopher-lua has no allocator hook, so the budget (Limits.MemoryBytes) is
// enforced by three cooperating parts:
//
//  1. Every Go-side producer of big strings is size-checked before it
//     allocates: `..` (compiled into a call of a checked concatenation, see
//     Compile), string.rep, string.format, string.gsub, table.concat, load,
//     and the host modules (json, http bodies, crypto, url). A single string
//     over Limits.MaxStringBytes, or one the remaining budget cannot take,
//     trips the limit before the allocation.
//  2. An engine-wide sampler publishes the process's cumulative heap
//     allocation counter (runtime/metrics /gc/heap/allocs:bytes) every
//     millisecond while runs are active. Before every VM instruction a run
//     compares it (one atomic load) with the value at its last
//     measurement: the run cannot have grown by more than the process
//     allocated, so as long as that difference is below the remaining
//     budget (but at least 1/8 of the budget, which bounds how often a run
//     near its budget is measured) nothing needs measuring.
//  3. When it is not, the run's live memory is measured by walking
//     everything the run can reach: the value stacks of its threads (main
//     and coroutines), globals, loaded modules, upvalues, metatables. The
//     shared read-only libraries are not counted. Cost model: a string is
//     its length + 16 bytes (a string of 1 KiB or more referenced many
//     times counts once); a table is 64 bytes + 16 per array slot up to its
//     highest non-nil index + 40 per entry; a function 64 + 16 per upvalue;
//     a coroutine 4 KiB plus its stack. Over the budget, the run stops.
//
// Precision: the walker counts what a script can still reach, as the
// model above prices it; actual Go heap use differs by a small factor
// (map overhead, slice capacity, boxing). A run is measured again at the
// latest after it (or the process) allocated max(remaining budget,
// budget/8) more bytes, seen with ~1 ms of sampler lag; VM instructions
// allocate small amounts, except an assignment to a far array index,
// which gopher-lua fills with nils (capped here at 1,048,575 slots =
// 16 MiB in one instruction, see lua.MaxArrayIndex in init). So a run is
// stopped once its estimate passes the budget, having allocated at most
// about budget/8 + 16 MiB beyond it (measured: the table-growth bomb
// with a 32 MiB budget stops at an estimate of ~40 MiB). Temporaries in unnamed registers
// are counted through the stack walk; Go-side buffers of host modules are
// capped separately (e.g. HTTP bodies). A process under heavy allocation
// from other goroutines only makes measurements more frequent, never
// less safe.
type allocSampler struct {
	active  atomic.Int64
	closed  atomic.Bool
	wake    chan struct{}
	done    chan struct{}
	value   atomic.Uint64
	samples []metrics.Sample
}

const samplerPeriod = time.Millisecond

func newAllocSampler() *allocSampler {
	s := &allocSampler{
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		samples: []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}},
	}
	s.sample()
	go s.loop()
	return s
}

func (s *allocSampler) sample() {
	metrics.Read(s.samples)
	if s.samples[0].Value.Kind() == metrics.KindUint64 {
		s.value.Store(s.samples[0].Value.Uint64())
	}
}

// currentAllocs reads the process's cumulative heap allocation count now
// (a synchronous read, for the rare moments the sampler's lag matters).
func currentAllocs() uint64 {
	var s [1]metrics.Sample
	s[0].Name = "/gc/heap/allocs:bytes"
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// allocs returns the last sampled cumulative allocation count.
func (s *allocSampler) allocs() uint64 { return s.value.Load() }

// begin and end bracket a run; the sampler ticks only while runs exist.
func (s *allocSampler) begin() {
	if s.active.Add(1) == 1 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *allocSampler) end() { s.active.Add(-1) }

func (s *allocSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(samplerPeriod)
	defer t.Stop()
	for {
		if s.closed.Load() {
			return
		}
		if s.active.Load() <= 0 {
			<-s.wake
			continue
		}
		s.sample()
		<-t.C
	}
}

func (s *allocSampler) close() {
	s.closed.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
}

// Cost model of the walker; see the comment on allocSampler.
const (
	costString    = 16
	costTable     = 64
	costSlot      = 16
	costEntry     = 40
	costFunction  = 64
	costUpvalue   = 16
	costThread    = 4 << 10
	costUserData  = 64
	bigStringSize = 1 << 10
)

// measure estimates the live memory reachable by run r.
func (vs *vmState) measure(r *run) int64 {
	// The walker's sets live on the state and are cleared, not remade,
	// so repeated walks of a big heap do not allocate it again each time.
	if vs.walkSeen == nil {
		vs.walkSeen, vs.walkStrings = map[any]struct{}{}, map[*byte]struct{}{}
	}
	defer func() {
		if len(vs.walkSeen) > 1<<16 {
			// Do not keep a huge set alive on a pooled state.
			vs.walkSeen, vs.walkStrings, vs.walkWork = nil, nil, nil
			return
		}
		clear(vs.walkSeen)
		clear(vs.walkStrings)
	}()
	w := walker{
		vs:      vs,
		seen:    vs.walkSeen,
		strings: vs.walkStrings,
		work:    vs.walkWork[:0],
	}
	defer func() {
		if vs.walkSeen != nil {
			vs.walkWork = w.work[:0]
		}
	}()
	w.push(r.env)
	w.push(r.input)
	if r.loaded != nil {
		w.push(r.loaded)
	}
	w.thread(vs.L)
	w.drain()
	return w.total
}

type walker struct {
	vs      *vmState
	seen    map[any]struct{}
	strings map[*byte]struct{}
	work    []lua.LValue
	total   int64
}

func (w *walker) push(v lua.LValue) {
	switch x := v.(type) {
	case nil:
	case lua.LString:
		n := len(x)
		if n >= bigStringSize {
			p := unsafe.StringData(string(x))
			if _, ok := w.strings[p]; ok {
				w.total += costString
				return
			}
			w.strings[p] = struct{}{}
		}
		w.total += int64(n) + costString
	case *lua.LTable, *lua.LFunction, *lua.LUserData, *lua.LState:
		if t, ok := x.(*lua.LTable); ok {
			if _, prot := w.vs.protected[t]; prot {
				return
			}
		}
		if _, ok := w.seen[x]; ok {
			return
		}
		w.seen[x] = struct{}{}
		w.work = append(w.work, x)
	}
}

func (w *walker) drain() {
	for len(w.work) > 0 {
		v := w.work[len(w.work)-1]
		w.work = w.work[:len(w.work)-1]
		switch x := v.(type) {
		case *lua.LTable:
			w.total += costTable + costSlot*int64(x.MaxN())
			x.ForEach(func(k, val lua.LValue) {
				w.total += costEntry
				w.push(k)
				w.push(val)
			})
			w.push(x.Metatable)
		case *lua.LFunction:
			w.total += costFunction + costUpvalue*int64(len(x.Upvalues))
			w.push(x.Env)
			for _, uv := range x.Upvalues {
				if uv != nil {
					w.push(uv.Value())
				}
			}
		case *lua.LUserData:
			w.total += costUserData
			w.push(x.Metatable)
		case *lua.LState:
			w.thread(x)
		}
	}
}

// thread counts a thread and pushes its whole value stack. gopher-lua
// exposes the slots below the top through negative indices (up to 9999).
func (w *walker) thread(th *lua.LState) {
	w.total += costThread
	if th != w.vs.L {
		w.seen[th] = struct{}{}
	}
	slots := w.vs.eng.limits.StackSlots
	for k := 1; k <= slots; k++ {
		w.push(th.Get(-k))
	}
}
