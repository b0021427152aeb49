package operator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
)

const notifyModule = `local http = require("http")
local kv = require("kv")
local M = {}
function M.on_order_paid(e)
  kv.set("seen:" .. e.order.id, "yes")
  local r = http.post(e.url, "paid " .. e.order.id)
  return {status = r.status, body = r.body, before = kv.get("seeded"), version = VERSION}
end
function M.before_order_create(e)
  if e.amount > 10 then return {reject = "too big"} end
end
return M
`

func TestDryRun(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var got []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
		io.WriteString(w, "ok")
	}))
	defer fake.Close()
	host := mustHost(t, fake.URL)
	f.upload(t, "notify", notifyModule, true)
	// Version 2 is uploaded but not active: a dry run can try it first.
	f.upload(t, "notify", `VERSION = 2 `+notifyModule, false)
	paid := map[string]any{"order": map[string]any{"id": "o1"}, "url": fake.URL}

	tests := []struct {
		name     string
		caller   market.Caller
		req      operator.DryRunRequest
		kind     market.Kind
		ok       bool
		rejected string
		check    func(t *testing.T, r *operator.DryRunResult)
	}{
		{name: "active version, fake allowed", caller: admin, ok: true,
			req: operator.DryRunRequest{Module: "notify", Event: market.EventOrderPaid, Input: paid, AllowHosts: []string{host}, KV: map[string]string{"seeded": "s"}},
			check: func(t *testing.T, r *operator.DryRunResult) {
				v := r.Value.(map[string]any)
				if v["status"] != int64(200) || v["before"] != "s" || v["version"] != nil || r.KV["seen:o1"] != "yes" {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "inactive version", caller: admin, ok: true,
			req: operator.DryRunRequest{Module: "notify", Version: 2, Function: "on_order_paid", Input: paid, AllowHosts: []string{host}},
			check: func(t *testing.T, r *operator.DryRunResult) {
				if r.Value.(map[string]any)["version"] != int64(2) || r.Version[:3] != "v2-" {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "host not given", caller: admin, ok: false,
			req: operator.DryRunRequest{Module: "notify", Event: market.EventOrderPaid, Input: paid}},
		{name: "before check rejects", caller: admin, ok: true, rejected: "too big",
			req: operator.DryRunRequest{Module: "notify", Event: market.BeforeOrderCreate, Input: map[string]any{"amount": 11}}},
		{name: "inline script", caller: admin, ok: true,
			req: operator.DryRunRequest{Source: `local input = ... return {twice = input.n * 2, m = require("notify") ~= nil}`, Input: map[string]any{"n": 21}},
			check: func(t *testing.T, r *operator.DryRunResult) {
				if r.Value.(map[string]any)["twice"] != int64(42) {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "broken inline source", caller: admin, kind: market.KindInvalid,
			req: operator.DryRunRequest{Source: "return {", Function: "f"}},
		{name: "loop is cut", caller: admin, ok: false,
			req: operator.DryRunRequest{Module: "loop", Source: "return {f = function() while true do end end}", Function: "f", TimeoutMs: 50},
			check: func(t *testing.T, r *operator.DryRunResult) {
				if r.Limit != "timeout" {
					t.Fatalf("result %+v", r)
				}
			}},
		{name: "support may not", caller: support, kind: market.KindForbidden,
			req: operator.DryRunRequest{Module: "notify", Event: market.EventOrderPaid}},
		{name: "unknown module", caller: admin, kind: market.KindNotFound,
			req: operator.DryRunRequest{Module: "nope", Function: "f"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := f.svc.DryRun(ctx, tc.caller, tc.req)
			if tc.kind != "" {
				if kindOf(err) != tc.kind {
					t.Fatalf("kind %q want %q: %v", kindOf(err), tc.kind, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.OK != tc.ok || r.Rejected != tc.rejected {
				t.Fatalf("ok %v rejected %q: %+v", r.OK, r.Rejected, r)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	// Nothing outside the sandbox changed and nothing was recorded.
	if _, ok, _ := f.db.KV().Get(ctx, operator.OperatorKVScope, "seen:o1"); ok {
		t.Fatal("dry run wrote to the real kv")
	}
	if runs := f.runs(t, operator.RunFilter{}); len(runs) != 0 {
		t.Fatalf("dry runs recorded: %+v", runs)
	}
	if len(got) != 2 {
		t.Fatalf("fake got %q", got)
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
