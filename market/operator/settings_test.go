package operator_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/operator"
)

const (
	opSecret       = "sk-live-OPERATOR-0001"
	providerSecret = "ptok-PROVIDER-0002"
)

func putSettings(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []struct {
		provider, key, value string
		secret               bool
	}{
		{"", "api_url", "https://operator.example", false},
		{"", "api_key", opSecret, true},
		{"", "shared", "operator", false},
		{"p", "api_url", "https://p.example", false},
		{"p", "p_token", providerSecret, true},
	} {
		v, err := f.svc.PutSetting(ctx, admin, s.provider, s.key, s.value, s.secret)
		if err != nil {
			t.Fatal(err)
		}
		if s.secret && (v.Value != operator.SecretMask || !v.Secret) {
			t.Fatalf("secret shown: %+v", v)
		}
	}
}

func TestSettingsScopes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putSettings(t, f)
	tests := []struct {
		provider string
		want     map[string]string
		secrets  []string
	}{
		{"p", map[string]string{"api_url": "https://p.example", "api_key": opSecret, "shared": "operator", "p_token": providerSecret}, []string{"api_key", "p_token"}},
		{"q", map[string]string{"api_url": "https://operator.example", "api_key": opSecret, "shared": "operator"}, []string{"api_key"}},
		{"", map[string]string{"api_url": "https://operator.example", "api_key": opSecret, "shared": "operator"}, []string{"api_key"}},
	}
	for _, tc := range tests {
		values, secrets := f.svc.ScriptSettings(tc.provider)
		if len(values) != len(tc.want) || !slices.Equal(secrets, tc.secrets) {
			t.Fatalf("%q: %v %v", tc.provider, values, secrets)
		}
		for k, v := range tc.want {
			if values[k] != v {
				t.Fatalf("%q: %s = %q, want %q", tc.provider, k, values[k], v)
			}
		}
	}
	// Reads: masked, for support too; writes: admins only.
	list, err := f.svc.ListSettings(ctx, support, "", false)
	if err != nil || len(list) != 5 {
		t.Fatalf("list %+v %v", list, err)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), opSecret) || strings.Contains(string(b), providerSecret) {
		t.Fatalf("secret in list: %s", b)
	}
	if _, err := f.svc.PutSetting(ctx, support, "", "x", "y", false); kindOf(err) != market.KindForbidden {
		t.Fatalf("support write: %v", err)
	}
	if err := f.svc.DeleteSetting(ctx, support, "", "shared"); kindOf(err) != market.KindForbidden {
		t.Fatalf("support delete: %v", err)
	}
	if _, err := f.svc.PutSetting(ctx, admin, "", "bad key", "y", false); kindOf(err) != market.KindInvalid {
		t.Fatalf("bad key: %v", err)
	}
	if err := f.svc.DeleteSetting(ctx, admin, "", "shared"); err != nil {
		t.Fatal(err)
	}
	if values, _ := f.svc.ScriptSettings("p"); values["shared"] != "" {
		t.Fatalf("deleted setting still seen: %v", values)
	}
	// A secret is sealed at rest: no file of the database holds it.
	if err := f.svc.FlushRuns(ctx); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		raw, err := os.ReadFile(f.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), opSecret) || strings.Contains(string(raw), providerSecret) {
			t.Fatalf("secret in the clear in %s", f.dbPath+suffix)
		}
	}
}

// TestSecretsNeverLeak runs a hook and a lifecycle script that log,
// return and raise their secrets: neither the server log nor the run
// records nor the dry-run answer hold them.
func TestSecretsNeverLeak(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putSettings(t, f)
	f.bind(t, "leaky", `local settings = require("settings")
local log = require("log")
local M = {}
function M.on_order_paid(e)
  log.info("key is " .. settings.get("api_key"), {key = settings.get("api_key")})
  error("failed with " .. settings.get("api_key"))
end
function M.before_order_create(e)
  return {reject = "no: " .. settings.get("api_key")}
end
return M`, market.EventOrderPaid, market.BeforeOrderCreate)
	f.svc.After(ctx, market.EventOrderPaid, map[string]any{"order": map[string]any{"id": "o1", "provider": "p"}})
	err := f.svc.Before(ctx, market.BeforeOrderCreate, map[string]any{"address": "A"})
	if kindOf(err) != market.KindForbidden || strings.Contains(err.Error(), opSecret) {
		t.Fatalf("rejection: %v", err)
	}
	runner := &luascript.Runner{Engine: f.engine, Logger: f.log, Settings: f.svc, Recorder: f.svc, Modules: f.svc.RunResolver}
	out, err := runner.RunScript(ctx, market.ScriptRun{Step: market.JobStart, Hash: "h1", Provider: "p", OrderID: "o2",
		Source: `local settings = require("settings")
print("token " .. settings.get("p_token") .. " key " .. settings.get("api_key"))
return {secret = "buyer-login-0003", data = {k = settings.get("p_token"), url = settings.get("api_url")}}`})
	if err != nil || out["secret"] != "buyer-login-0003" {
		t.Fatalf("script: %v %v", out, err)
	}
	dry, err := f.svc.DryRun(ctx, admin, operator.DryRunRequest{Module: "leaky", Event: market.EventOrderPaid, Input: map[string]any{}})
	if err != nil || dry.OK || dry.Error == "" {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	var runs []operator.Run
	waitFor(t, "three runs", func() bool {
		runs = f.runs(t, operator.RunFilter{})
		return len(runs) == 3
	})
	b, _ := json.Marshal(struct {
		Runs []operator.Run
		Dry  *operator.DryRunResult
	}{runs, dry})
	for _, leaked := range []string{opSecret, providerSecret, "buyer-login-0003"} {
		if strings.Contains(string(b), leaked) {
			t.Errorf("%s in records: %s", leaked, b)
		}
		if strings.Contains(f.logs.String(), leaked) {
			t.Errorf("%s in the log", leaked)
		}
	}
	if !strings.Contains(string(b), "[REDACTED]") || !strings.Contains(string(b), "https://p.example") {
		t.Errorf("records lack the redacted marks or plain values: %s", b)
	}
	var script *operator.Run
	for i := range runs {
		if runs[i].Kind == operator.KindScript {
			script = &runs[i]
		}
	}
	if script == nil || script.OrderID != "o2" || script.Version != "h1" || !script.OK || len(script.Logs) != 1 {
		t.Fatalf("script run: %+v", script)
	}
}

// TestSealKey: a service with the same key reads the secrets back; with
// another key it cannot (and says so in the log).
func TestSealKey(t *testing.T) {
	f := newFixture(t)
	putSettings(t, f)
	same, err := operator.New(context.Background(), operator.Config{Store: f.db.Operator(), Engine: f.engine,
		SealKey: []byte(strings.Repeat("\x07", operator.SealKeySize))})
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close(context.Background())
	if v, _ := same.ScriptSettings("p"); v["p_token"] != providerSecret {
		t.Fatalf("same key: %v", v)
	}
	other, err := operator.New(context.Background(), operator.Config{Store: f.db.Operator(), Engine: f.engine,
		SealKey: []byte(strings.Repeat("\x08", operator.SealKeySize))})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if v, _ := other.ScriptSettings("p"); v["p_token"] != "" || v["api_url"] != "https://p.example" {
		t.Fatalf("other key: %v", v)
	}
}
