package operator

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// MaxRejectionBytes bounds a before-check's rejection message.
const MaxRejectionBytes = 512

var _ market.Hooks = (*Service)(nil)

// Before implements market.Hooks: it runs the checks bound to event in
// binding order, each with the before deadline. The first check that
// returns {reject = "message"} rejects the action with a KindForbidden
// error carrying the message; checks that fail to run are recorded and
// do not block.
func (s *Service) Before(ctx context.Context, event string, payload map[string]any) error {
	snap := s.mods.Load()
	hooks := snap.hooks[event]
	if len(hooks) == 0 {
		return nil
	}
	input := eventInput(event, payload)
	for _, h := range hooks {
		run := s.callHook(ctx, snap, h, event, input, s.cfg.BeforeTimeout)
		if run.Rejected != "" {
			return &market.Error{Kind: market.KindForbidden, Message: run.Rejected,
				Details: map[string]any{"hook": h.Module + "." + h.Function, "event": event}}
		}
	}
	return nil
}

// After implements market.Hooks: it queues the hooks bound to event for
// the background workers and returns at once. A full queue drops the
// event for that hook and records the drop.
func (s *Service) After(_ context.Context, event string, payload map[string]any) {
	snap := s.mods.Load()
	hooks := snap.hooks[event]
	if len(hooks) == 0 {
		return
	}
	input := eventInput(event, payload)
	for _, h := range hooks {
		s.hooks.submit(hookJob{snap: snap, hook: h, event: event, input: input})
	}
}

// eventInput is the hook's argument: the payload plus the event name.
func eventInput(event string, payload map[string]any) map[string]any {
	in := make(map[string]any, len(payload)+1)
	maps.Copy(in, payload)
	in["event"] = event
	return in
}

// payloadIDs finds the order id and provider an event is about.
func payloadIDs(in map[string]any) (orderID, provider string) {
	if o, ok := in["order"].(map[string]any); ok {
		orderID, _ = o["id"].(string)
		provider, _ = o["provider"].(string)
	}
	if p, ok := in["provider"].(string); ok && provider == "" {
		provider = p
	}
	return orderID, provider
}

// callHook runs one hook with its deadline, records the run and returns
// the record.
func (s *Service) callHook(ctx context.Context, snap *moduleSnapshot, h boundHook, event string, input map[string]any, timeout time.Duration) Run {
	view := s.settings.Load().forProvider("")
	orderID, provider := payloadIDs(input)
	name := h.Module + "." + h.Function
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.cfg.Engine.Call(ctx, runtime.Script{Name: h.Module, Source: h.mod.source}, h.Function, input, runtime.RunOptions{
		Timeout: timeout, AllowedHosts: s.cfg.HookHosts, RootCAs: s.cfg.RootCAs,
		Settings: view.values, SecretKeys: view.secretKeys, KVScope: OperatorKVScope, Resolver: snap,
		Logger: s.log.With("hook", name, "event", event, "order", orderID),
	})
	run := RunOf(KindHook, name, res, err)
	run.Event, run.Version, run.OrderID, run.Provider = event, h.mod.tag(), orderID, provider
	if err == nil && isBefore(event) {
		run.Rejected = view.redact(rejection(res.Value, name))
	}
	s.Record(run)
	return run
}

// rejection reads a before-check's answer: {reject = "message"} (or
// reject = true) rejects; anything else lets the action go on.
func rejection(v any, hook string) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	switch r := m["reject"].(type) {
	case string:
		if len(r) > MaxRejectionBytes {
			r = r[:MaxRejectionBytes]
		}
		return r
	case bool:
		if r {
			return "rejected by operator hook " + hook
		}
	}
	return ""
}

// hookJob is one after-hook to run.
type hookJob struct {
	snap  *moduleSnapshot
	hook  boundHook
	event string
	input map[string]any
}

// hookPool runs after-hooks on a fixed number of workers.
type hookPool struct {
	s      *Service
	jobs   chan hookJob
	stop   chan struct{}
	closed atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newHookPool(s *Service, workers, queue int) *hookPool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &hookPool{s: s, jobs: make(chan hookJob, queue), stop: make(chan struct{}), ctx: ctx, cancel: cancel}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// submit queues a job without blocking; a full queue or a closed pool
// records the drop.
func (p *hookPool) submit(j hookJob) {
	if !p.closed.Load() {
		select {
		case p.jobs <- j:
			return
		default:
		}
	}
	orderID, provider := payloadIDs(j.input)
	p.s.Record(Run{Kind: KindHook, Name: j.hook.Module + "." + j.hook.Function, Event: j.event,
		Version: j.hook.mod.tag(), OrderID: orderID, Provider: provider, Started: p.s.cfg.Now(),
		Error: "hook not run: the hook queue is full or the server is stopping"})
}

func (p *hookPool) work() {
	defer p.wg.Done()
	for {
		select {
		case j := <-p.jobs:
			p.run(j)
		case <-p.stop:
			for {
				select {
				case j := <-p.jobs:
					p.run(j)
				default:
					return
				}
			}
		}
	}
}

func (p *hookPool) run(j hookJob) {
	p.s.callHook(p.ctx, j.snap, j.hook, j.event, j.input, p.s.cfg.AfterTimeout)
}

// close stops taking jobs and waits for the queued ones until ctx ends,
// then cancels the runs still going.
func (p *hookPool) close(ctx context.Context) {
	if !p.closed.CompareAndSwap(false, true) {
		return
	}
	close(p.stop)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
	}
	p.cancel()
}
