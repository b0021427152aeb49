package operator_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
)

func TestUploadActivateRollback(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	script := `return {v = require("greet").v, b = require("bundled").v, s = require("shadow").v}`

	v1 := f.upload(t, "greet", `return {v = "one"}`, false)
	if v1.Version != 1 || v1.Active {
		t.Fatalf("first upload: %+v", v1)
	}
	// Not active yet: require fails.
	if _, err := f.engine.Run(ctx, runtime.Script{Name: "t", Source: script}, nil, runtime.RunOptions{Resolver: f.svc.RunResolver()}); err == nil {
		t.Fatal("inactive module resolved")
	}
	if err := f.svc.Activate(ctx, admin, map[string]int{"greet": 1}); err != nil {
		t.Fatal(err)
	}
	got := f.run(t, script)
	if got["v"] != "one" || got["b"] != "bundled" || got["s"] != "bundled shadow" {
		t.Fatalf("after activate: %v", got)
	}
	// Upload and activate in one step; an operator module shadows a
	// bundled one.
	f.upload(t, "greet", `return {v = "two"}`, true)
	f.upload(t, "shadow", `return {v = "operator shadow"}`, true)
	if got := f.run(t, script); got["v"] != "two" || got["s"] != "operator shadow" {
		t.Fatalf("after second upload: %v", got)
	}
	back, err := f.svc.Rollback(ctx, admin, "greet")
	if err != nil || back != 1 {
		t.Fatalf("rollback: %d %v", back, err)
	}
	if got := f.run(t, script); got["v"] != "one" {
		t.Fatalf("after rollback: %v", got)
	}
	// Rolling back again returns to 2 (the version active before 1).
	if back, err := f.svc.Rollback(ctx, admin, "greet"); err != nil || back != 2 {
		t.Fatalf("second rollback: %d %v", back, err)
	}
	vs, hist, err := f.svc.ModuleVersions(ctx, support, "greet")
	if err != nil || len(vs) != 2 || !vs[0].Active || vs[0].Version != 2 || len(hist) != 4 {
		t.Fatalf("versions %+v history %+v err %v", vs, hist, err)
	}
	mods, err := f.svc.Modules(ctx, support)
	if err != nil || len(mods) != 2 || mods[0].Name != "greet" || mods[0].Active != 2 || mods[0].Latest != 2 {
		t.Fatalf("modules %+v %v", mods, err)
	}
	// The run records the version it used.
	res, err := f.engine.Run(ctx, runtime.Script{Name: "t", Source: script}, nil, runtime.RunOptions{Resolver: f.svc.RunResolver()})
	if err != nil || !strings.HasPrefix(res.Record.Modules[0], "greet@v2-") {
		t.Fatalf("record modules %v %v", res.Record.Modules, err)
	}
	// Deleting the active version is refused; deleting version 1 works.
	if err := f.svc.DeleteModule(ctx, admin, "greet", 2); kindOf(err) != market.KindConflict {
		t.Fatalf("delete active version: %v", err)
	}
	if err := f.svc.DeleteModule(ctx, admin, "greet", 1); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteModule(ctx, admin, "greet", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.engine.Run(ctx, runtime.Script{Name: "t", Source: script}, nil, runtime.RunOptions{Resolver: f.svc.RunResolver()}); err == nil {
		t.Fatal("deleted module resolved")
	}
}

func TestUploadRejected(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name, module, src string
		caller            market.Caller
		kind              market.Kind
		line              int
	}{
		{"syntax error names its line", "broken", "local x = 1\nlocal y = 2\nreturn {x = }\n", admin, market.KindInvalid, 3},
		{"unclosed function at the end", "broken", "local M = {}\nfunction M.f()\n", admin, market.KindInvalid, 3},
		{"empty", "empty", "  ", admin, market.KindInvalid, 0},
		{"bad name", "a/b", "return {}", admin, market.KindInvalid, 0},
		{"built-in name", "json", "return {}", admin, market.KindInvalid, 0},
		{"support may not upload", "ok", "return {}", support, market.KindForbidden, 0},
		{"anonymous may not upload", "ok", "return {}", market.Caller{}, market.KindUnauthorized, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.UploadModule(ctx, tc.caller, tc.module, tc.src, true)
			if kindOf(err) != tc.kind {
				t.Fatalf("kind %s, want %s (%v)", kindOf(err), tc.kind, err)
			}
			me := market.AsError(err)
			if tc.line > 0 && me.Details["line"] != tc.line {
				t.Fatalf("line %v, want %d (%v)", me.Details["line"], tc.line, err)
			}
		})
	}
	if mods, _ := f.svc.Modules(ctx, admin); len(mods) != 0 {
		t.Fatalf("rejected uploads were stored: %+v", mods)
	}
}

// TestConcurrentActivation flips two modules between versions while runs
// require both: no run fails and every run sees one consistent pair.
func TestConcurrentActivation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const versions = 5
	for i := 1; i <= versions; i++ {
		f.upload(t, "pa", fmt.Sprintf(`return {v = %d}`, i), false)
		// b requires a at load time too: the nested require must see
		// the same snapshot.
		f.upload(t, "pb", fmt.Sprintf(`local a = require("pa") return {v = %d, seen = a.v}`, i), false)
	}
	if err := f.svc.Activate(ctx, admin, map[string]int{"pa": 1, "pb": 1}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var flips atomic.Int64
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; !stop.Load() || i < 10; i++ {
			v := i%versions + 1
			if err := f.svc.Activate(ctx, admin, map[string]int{"pa": v, "pb": v}); err != nil {
				done <- err
				return
			}
			flips.Add(1)
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	seen := make([]map[int64]bool, 8)
	for w := range 8 {
		seen[w] = map[int64]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				res, err := f.engine.Run(ctx, runtime.Script{Name: "t", Source: `local b = require("pb") local a = require("pa") return {a = a.v, b = b.v, seen = b.seen}`},
					nil, runtime.RunOptions{Resolver: f.svc.RunResolver()})
				if err != nil {
					errs <- err
					return
				}
				m := res.Map()
				if m["a"] != m["b"] || m["a"] != m["seen"] {
					errs <- fmt.Errorf("inconsistent run: %v", m)
					return
				}
				seen[w][m["a"].(int64)] = true
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if flips.Load() < 10 {
		t.Fatalf("only %d activations", flips.Load())
	}
	t.Logf("%d activations during %d runs", flips.Load(), 8*150)
}

func TestHookBindings(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.upload(t, "limits", `local M = {} function M.before_order_create(e) return nil end function M.other(e) end return M`, true)
	tests := []struct {
		name string
		hook operator.Hook
		kind market.Kind
	}{
		{"conventional function", operator.Hook{Event: market.BeforeOrderCreate, Module: "limits"}, ""},
		{"named function", operator.Hook{Event: market.EventOrderPaid, Module: "limits", Function: "other"}, ""},
		{"duplicate", operator.Hook{Event: market.BeforeOrderCreate, Module: "limits"}, market.KindConflict},
		{"unknown event", operator.Hook{Event: "order.eaten", Module: "limits"}, market.KindInvalid},
		{"missing function", operator.Hook{Event: market.EventOrderFiled, Module: "limits"}, market.KindInvalid},
		{"inactive module", operator.Hook{Event: market.EventOrderFiled, Module: "nope"}, market.KindConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.BindHook(ctx, admin, tc.hook)
			if kindOf(err) != tc.kind {
				t.Fatalf("kind %q, want %q (%v)", kindOf(err), tc.kind, err)
			}
		})
	}
	list, err := f.svc.ListHooks(ctx, support)
	if err != nil || len(list.Hooks) != 2 || list.Hooks[0].Function != "before_order_create" || len(list.Events) != 10 {
		t.Fatalf("hooks %+v %v", list, err)
	}
	// A bound module cannot be deleted or deactivated.
	if err := f.svc.DeleteModule(ctx, admin, "limits", 0); kindOf(err) != market.KindConflict {
		t.Fatalf("delete bound module: %v", err)
	}
	if err := f.svc.Activate(ctx, admin, map[string]int{"limits": 0}); kindOf(err) != market.KindConflict {
		t.Fatalf("deactivate bound module: %v", err)
	}
	if _, err := f.svc.BindHook(ctx, support, operator.Hook{Event: market.EventOrderFiled, Module: "limits", Function: "other"}); kindOf(err) != market.KindForbidden {
		t.Fatalf("support bind: %v", err)
	}
	for _, h := range list.Hooks {
		if err := f.svc.UnbindHook(ctx, admin, h.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.DeleteModule(ctx, admin, "limits", 0); err != nil {
		t.Fatal(err)
	}
}

func TestFunctionFor(t *testing.T) {
	for event, want := range map[string]string{
		market.EventOrderPaid:          "on_order_paid",
		market.EventServiceStartFailed: "on_service_start_failed",
		market.EventTemplateUploaded:   "on_template_uploaded",
		market.BeforeOrderCreate:       "before_order_create",
		market.BeforeTemplateUpload:    "before_template_upload",
	} {
		if got := operator.FunctionFor(event); got != want {
			t.Errorf("FunctionFor(%s) = %s, want %s", event, got, want)
		}
	}
}
