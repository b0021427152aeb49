package operator_test

import (
	"context"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
)

// bind uploads and activates src as module name and binds it to events.
func (f *fixture) bind(t *testing.T, name, src string, events ...string) {
	t.Helper()
	f.upload(t, name, src, true)
	for _, e := range events {
		if _, err := f.svc.BindHook(context.Background(), admin, operator.Hook{Event: e, Module: name}); err != nil {
			t.Fatalf("bind %s to %s: %v", name, e, err)
		}
	}
}

const limitHook = `local kv = require("kv")
local M = {}
function M.before_order_create(e)
  local key = "orders:" .. e.address
  local n = tonumber(kv.get(key) or "0")
  if n >= 2 then
    return {reject = "at most 2 orders per address (" .. e.event .. ")"}
  end
  kv.set(key, tostring(n + 1))
end
return M
`

func TestBeforeHookRejects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.bind(t, "limits", limitHook, market.BeforeOrderCreate)
	for i, tc := range []struct {
		address string
		reject  bool
	}{{"A", false}, {"A", false}, {"B", false}, {"A", true}, {"A", true}} {
		err := f.svc.Before(ctx, market.BeforeOrderCreate, map[string]any{"address": tc.address, "provider": "p"})
		if !tc.reject {
			if err != nil {
				t.Fatalf("order %d of %s rejected: %v", i, tc.address, err)
			}
			continue
		}
		me := market.AsError(err)
		if me == nil || me.Kind != market.KindForbidden || me.Message != "at most 2 orders per address (before.order.create)" {
			t.Fatalf("order %d of %s: %#v", i, tc.address, err)
		}
	}
	// The hook's kv is the operator's scope, not a provider's.
	if v, ok, _ := f.db.KV().Get(ctx, operator.OperatorKVScope, "orders:A"); !ok || v != "2" {
		t.Fatalf("operator kv: %q %v", v, ok)
	}
	runs := f.runs(t, operator.RunFilter{Kind: operator.KindHook, Event: market.BeforeOrderCreate})
	if len(runs) != 5 || runs[0].Rejected == "" || !runs[0].OK || runs[0].Provider != "p" || runs[0].Name != "limits.before_order_create" {
		t.Fatalf("runs: %+v", runs)
	}
	// Events without hooks cost nothing and never fail.
	if err := f.svc.Before(ctx, market.BeforeOrderRefund, nil); err != nil {
		t.Fatal(err)
	}
}

// TestFailingHooksDoNotBlock: a before-check that errors or loops does
// not block the action; an after-hook that loops is cut at its deadline;
// all are recorded.
func TestFailingHooksDoNotBlock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.bind(t, "crash", "local M = {}\nfunction M.before_order_create(e)\n  error(\"boom\")\nend\nreturn M\n", market.BeforeOrderCreate)
	f.bind(t, "loop", `local M = {}
function M.before_order_refund(e) while true do end end
function M.on_order_paid(e) while true do end end
return M`, market.BeforeOrderRefund, market.EventOrderPaid)
	if err := f.svc.Before(ctx, market.BeforeOrderCreate, map[string]any{"address": "A"}); err != nil {
		t.Fatalf("crashing check blocked: %v", err)
	}
	if err := f.svc.Before(ctx, market.BeforeOrderRefund, map[string]any{"order": map[string]any{"id": "o1", "provider": "p"}}); err != nil {
		t.Fatalf("looping check blocked: %v", err)
	}
	f.svc.After(ctx, market.EventOrderPaid, map[string]any{"order": map[string]any{"id": "o2", "provider": "p"}})
	var after []operator.Run
	waitFor(t, "the looping after-hook's record", func() bool {
		after = f.runs(t, operator.RunFilter{Event: market.EventOrderPaid})
		return len(after) == 1
	})
	crash := f.runs(t, operator.RunFilter{Name: "crash.before_order_create"})
	loop := f.runs(t, operator.RunFilter{OrderID: "o1"})
	tests := []struct {
		name  string
		runs  []operator.Run
		line  int
		limit string
	}{
		{"crash", crash, 3, ""},
		{"looping check", loop, 2, "timeout"},
		{"looping after-hook", after, 3, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.runs) != 1 {
				t.Fatalf("runs: %+v", tc.runs)
			}
			r := tc.runs[0]
			if r.OK || r.Error == "" || r.ErrorLine != tc.line || r.Limit != tc.limit || r.Version == "" {
				t.Fatalf("run: %+v", r)
			}
		})
	}
}
