package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/market/paysource"
	"github.com/vmarket/vmarket/market/wallet"
	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
	"github.com/vmarket/vmarket/templates"
)

// End-to-end tests of the bundled integrations against the full app
// (startApp) and the loopback fakes: the VCC gas top-up and the VCP site
// monitor templates, and the Kassa24 payment source. Provider settings
// (API keys) are set through the admin API, as an operator would.

// buyer is a wallet buying on one app, with the clients the tests use:
// signed by the wallet, anonymous, and an admin operator's.
type buyer struct {
	t     *testing.T
	base  string
	w     *wallet.Wallet
	user  *client.Client
	anon  *client.Client
	admin *client.Client
	app   *app
}

func newBuyer(t *testing.T, base string, a *app) *buyer {
	t.Helper()
	w, err := wallet.Generate(wallet.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := operatorSecret("", a.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := opauth.NewKeyring(secret)
	tok, _ := keys.Issue("integrations", market.RoleAdmin, time.Hour, time.Now())
	b := &buyer{t: t, base: base, w: w, app: a}
	b.user, _ = client.New(base, client.Options{Wallet: w})
	b.anon, _ = client.New(base, client.Options{})
	b.admin, _ = client.New(base, client.Options{Token: tok})
	return b
}

// setting sets a provider-scope setting through the admin API.
func (b *buyer) setting(provider, key, value string, secret bool) {
	b.t.Helper()
	call(b.t, b.admin, "PUT", "/api/v1/admin/settings/"+key, url.Values{"provider": {provider}},
		map[string]any{"value": value, "secret": secret}, nil)
}

// typeOf returns the id of a provider's only service type.
func (b *buyer) typeOf(provider string) string {
	b.t.Helper()
	var types struct {
		List []market.ServiceType `json:"list"`
	}
	call(b.t, b.anon, "GET", "/api/v1/service/type", url.Values{"provider": {provider}}, nil, &types)
	if len(types.List) != 1 {
		b.t.Fatalf("provider %s has %d types", provider, len(types.List))
	}
	return types.List[0].ID
}

// buy places an order.
func (b *buyer) buy(typeID string, options map[string]string, hours int, amount float64) market.OrderJSON {
	b.t.Helper()
	var o market.OrderJSON
	call(b.t, b.user, "POST", "/api/v1/order/add", nil, map[string]any{
		"serviceID": typeID, "serviceOptions": options, "duration": hours, "amount": amount,
	}, &o)
	return o
}

// mockPay pays coins (whole or part of the order) with a mock payment.
func (b *buyer) mockPay(o market.OrderJSON, coins float64) {
	b.t.Helper()
	call(b.t, b.anon, "POST", "/api/v1/order/mock", nil, map[string]any{
		"orderId": o.ID, "providerAddr": o.Recipient, "pubKey": b.w.PublicKey().String(), "amt": int64(coins * 1e8),
	}, nil)
}

// order reads an order as its buyer.
func (b *buyer) order(id string) market.OrderJSON {
	b.t.Helper()
	var o market.OrderJSON
	call(b.t, b.user, "GET", "/api/v1/order/id/"+id, nil, nil, &o)
	return o
}

// waitFor polls an order until it reaches the status (bounded).
func (b *buyer) waitFor(id string, want market.OrderStatus) market.OrderJSON {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := b.order(id)
		if o.Status == want {
			return o
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("order %s is %s/%s, want %s", id, o.Status, o.ServiceStatus, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledger sums an order's credits and refunds.
func (b *buyer) ledger(id string) (credits, refunds market.Decimal, entries []market.Payment) {
	b.t.Helper()
	call(b.t, b.user, "GET", "/api/v1/order/id/"+id+"/payments", nil, nil, &entries)
	for _, p := range entries {
		if p.Kind == market.PaymentCredit {
			credits += p.Amount
		} else {
			refunds += p.Amount
		}
	}
	return credits, refunds, entries
}

// lastError reads an order's last error as an operator.
func (b *buyer) lastError(id string) string {
	b.t.Helper()
	var o market.OrderJSON
	call(b.t, b.admin, "GET", "/api/v1/order/id/"+id, nil, nil, &o)
	return o.LastError
}

// userService reads the order's user service and opens its secret.
func (b *buyer) userService(id string) (secret string, data map[string]any) {
	b.t.Helper()
	var us struct {
		market.OrderJSON
		UserService map[string]any `json:"userService"`
	}
	call(b.t, b.user, "GET", "/api/v1/userService/"+id, nil, nil, &us)
	s, err := wallet.OpenSecret(us.Magic, b.w.Keys)
	if err != nil {
		b.t.Fatalf("open secret: %v", err)
	}
	return string(s), us.UserService
}

// startVCCApp starts an app whose scripts trust vcc's TLS certificate
// (through --script-ca-file, as an operator trusts a private CA), points
// the bundled gas top-up type at vcc (its apiHost: the scripts call
// apiHost + /vcc-openapi/) and sets the provider's API key.
func startVCCApp(t *testing.T, vcc *vccfake.Server, apiKey string, mutate func(*serveConfig)) (*buyer, string, *app) {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "vcc-ca.pem")
	if err := os.WriteFile(caFile, vcc.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	base, a := startApp(t, func(c *serveConfig) {
		c.scriptCAFile = caFile
		if mutate != nil {
			mutate(c)
		}
	})
	b := newBuyer(t, base, a)
	bundles, err := templates.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	for _, bd := range bundles {
		if bd.Name == "vcc-gas-topup" {
			templates.Expand(bd.Template, base)
			bd.Template.Categories[0].ServiceTypes[0].APIHost = vcc.URL()
			call(t, b.admin, "POST", "/api/v1/template/add", nil, bd.Template, nil)
		}
	}
	b.setting("towngas-vcc", "vcc.api_key", apiKey, true)
	return b, base, a
}

func TestVCCGasTopupEndToEnd(t *testing.T) {
	const apiKey = "vcc-e2e-key"
	vcc := vccfake.New(vccfake.Config{APIKey: apiKey, Accounts: []vccfake.Account{
		{AccountNo: "880001", CustomerName: "陈大文", Address: "香港九龙旺角", Balance: 100_000_00},
		{AccountNo: "880002", CustomerName: "李小龙", Balance: 100_000_00, Status: "FROZEN"},
	}})
	defer vcc.Close()
	setUp := func(t *testing.T, mutate func(*serveConfig)) *buyer {
		b, _, _ := startVCCApp(t, vcc, apiKey, mutate)
		return b
	}
	calls := func(resource, orderNo string) int { return vcc.OrderCalls(resource, orderNo) }
	queries := func(account string) int {
		return vcc.Count(func(c vccfake.Call) bool {
			return c.Resource == vccfake.DefaultAccountQuery && c.Params["accountNo"] == account
		})
	}

	t.Run("top-up runs and ends", func(t *testing.T) {
		b := setUp(t, func(c *serveConfig) { c.hour = time.Second })
		balance, _ := vcc.Balance("880001")
		q0, all0 := queries("880001"), vcc.CallCount("")
		o := b.buy(b.typeOf("towngas-vcc"), map[string]string{"accountNo": "880001", "topUpCNY": "100"}, 1, 10)
		b.mockPay(o, 10)
		b.waitFor(o.ID, market.OrderFiled)
		secret, data := b.userService(o.ID)
		w, ok := vcc.Withdrawal(o.ID)
		if !ok || w.Status != vccfake.StatusSuccess || w.Amount != 100_00 || secret != w.WithdrawNo {
			t.Fatalf("withdrawal %+v (found %v), secret %q", w, ok, secret)
		}
		if data["accountHolder"] != "陈*文" || data["amountCNY"] != "100.00" || data["status"] != "SUCCESS" {
			t.Fatalf("user service %v", data)
		}
		done := b.waitFor(o.ID, market.OrderComplete)
		if done.ServiceStatus != market.ServiceDone {
			t.Fatalf("completed order: %+v", done)
		}
		if now, _ := vcc.Balance("880001"); now != balance-100_00 {
			t.Fatalf("balance %d, want %d", now, balance-100_00)
		}
		// Exactly: one query, one withdrawal, one report; stop calls nothing.
		if q := queries("880001") - q0; q != 1 || calls(vccfake.DefaultWithdraw, o.ID) != 1 ||
			calls(vccfake.DefaultWithdrawReport, o.ID) != 1 || vcc.CallCount("")-all0 != 3 {
			t.Fatalf("VCC calls: query %d, withdraw %d, report %d, all %d", q, calls(vccfake.DefaultWithdraw, o.ID),
				calls(vccfake.DefaultWithdrawReport, o.ID), vcc.CallCount("")-all0)
		}
		credits, refunds, _ := b.ledger(o.ID)
		if credits != market.NewDecimal(10) || refunds != 0 {
			t.Fatalf("ledger: credits %s refunds %s", credits, refunds)
		}
	})

	t.Run("refunds", func(t *testing.T) {
		b := setUp(t, func(c *serveConfig) { c.maxAttempts = 2 })
		typeID := b.typeOf("towngas-vcc")
		refund := func(id string) {
			t.Helper()
			call(t, b.user, "POST", "/api/v1/order/userRefund/"+id, nil, map[string]any{}, nil)
		}
		tests := []struct {
			name    string
			account string
			pay     float64 // of 10
			run     func(o market.OrderJSON)
			// what VCC saw for the order: queries of the account,
			// withdrawals, reports.
			queries, withdraws, reports int
			refunded                    market.Decimal
			withdrawal                  string // status at VCC, "" for none
		}{
			{
				name: "before the withdrawal: everything back", account: "880001", pay: 5,
				run:     func(o market.OrderJSON) { refund(o.ID) }, // half paid: pending, never started
				reports: 1, refunded: market.NewDecimal(5),
			},
			{
				name: "after the withdrawal: nothing back", account: "880001", pay: 10,
				run: func(o market.OrderJSON) {
					b.waitFor(o.ID, market.OrderFiled)
					refund(o.ID)
				},
				queries: 1, withdraws: 1, reports: 1, refunded: 0, withdrawal: vccfake.StatusSuccess,
			},
			{
				name: "frozen account: parked, everything back", account: "880002", pay: 10,
				queries: 2, refunded: market.NewDecimal(10), // two attempts
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				q0 := queries(tc.account)
				o := b.buy(typeID, map[string]string{"accountNo": tc.account, "topUpCNY": "100"}, 1, 10)
				b.mockPay(o, tc.pay)
				if tc.run != nil {
					tc.run(o)
				}
				final := b.waitFor(o.ID, market.OrderRefund)
				if final.ServiceStatus != market.ServiceAbort {
					t.Fatalf("refunded order: %+v", final)
				}
				credits, refunds, _ := b.ledger(o.ID)
				if credits != market.MustDecimal(jsonNumber(tc.pay)) || refunds != tc.refunded {
					t.Fatalf("ledger: credits %s refunds %s, want refunds %s", credits, refunds, tc.refunded)
				}
				if q, wd, rp := queries(tc.account)-q0, calls(vccfake.DefaultWithdraw, o.ID), calls(vccfake.DefaultWithdrawReport, o.ID); q != tc.queries || wd != tc.withdraws || rp != tc.reports {
					t.Fatalf("VCC calls: query %d withdraw %d report %d, want %d %d %d", q, wd, rp, tc.queries, tc.withdraws, tc.reports)
				}
				w, found := vcc.Withdrawal(o.ID)
				if (tc.withdrawal == "") == found || (found && w.Status != tc.withdrawal) {
					t.Fatalf("withdrawal at VCC: %+v (found %v), want %q", w, found, tc.withdrawal)
				}
				if tc.account == "880002" && !strings.Contains(b.lastError(o.ID), "880002 is FROZEN") {
					t.Fatalf("last error %q", b.lastError(o.ID))
				}
			})
		}
	})
}

// jsonNumber renders a float as the decimal text of a JSON number.
func jsonNumber(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func TestVCPSiteMonitorEndToEnd(t *testing.T) {
	const (
		site    = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"
		unknown = "00000000-0000-4000-8000-000000000000"
		apiKey  = "vcp-e2e-key"
	)
	vcp := vcpfake.New(vcpfake.Config{Keys: map[string][]string{apiKey: {vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry}}})
	defer vcp.Close()
	vcp.AddSite(site, vcpfake.SiteConfig{OperatingMode: "self-consumption"})
	now := time.Now()
	applied := now.Add(-2 * time.Hour)
	for _, c := range []vcpfake.Command{
		{ID: "c1", Type: "setMode", Status: "pending", CreatedAt: now},
		{ID: "c2", Type: "setLimit", Status: "applied", CreatedAt: applied, AppliedAt: &applied},
	} {
		if err := vcp.AddCommand(site, c); err != nil {
			t.Fatal(err)
		}
	}

	// The operator allows the VCP host for scripts and sets the provider's
	// VCP settings; the type's apiHost is the adapter inside vmarket.
	base, a := startApp(t, func(c *serveConfig) {
		c.allowHosts = []string{"127.0.0.1"}
		c.maxAttempts = 2
	})
	b := newBuyer(t, base, a)
	b.setting("vcp-energy", "vcp.base_url", vcp.URL(), false)
	b.setting("vcp-energy", "vcp.api_key", apiKey, true)
	typeID := b.typeOf("vcp-energy")
	count := func(endpoint string) int {
		return vcp.Count(func(c vcpfake.Call) bool {
			return c.Endpoint == endpoint && c.SiteID == site && c.APIKey == apiKey && c.Status == http.StatusOK
		})
	}

	o := b.buy(typeID, map[string]string{"siteId": site}, 2, 2)
	b.mockPay(o, 2)
	b.waitFor(o.ID, market.OrderFiled)
	token, data := b.userService(o.ID)
	if !strings.HasPrefix(token, "vcpm_") || data["operatingMode"] != "self-consumption" || data["siteId"] != site {
		t.Fatalf("secret %q, user service %v", token, data)
	}

	// The buyer's calls through vmarket's user API.
	var info map[string]any
	call(t, b.user, "GET", "/api/v1/service/userAPI/get/normal/info/"+o.ID, nil, nil, &info)
	if info["maxTelemetryWindowHours"] != float64(48) {
		t.Fatalf("info: %v", info)
	}
	var tel struct {
		Readings []map[string]any `json:"readings"`
	}
	call(t, b.user, "GET", "/api/v1/service/userAPI/get/secret/telemetry/"+o.ID,
		url.Values{"from": {"2025-06-01T00:00:00Z"}, "to": {"2025-06-01T01:00:00Z"}}, nil, &tel)
	if len(tel.Readings) != 5 || tel.Readings[0]["timestamp"] != "2025-06-01T00:00:00Z" {
		t.Fatalf("telemetry: %+v", tel)
	}
	var cmds struct {
		Commands []map[string]any `json:"commands"`
	}
	call(t, b.user, "GET", "/api/v1/service/userAPI/get/secret/commands/"+o.ID, nil, nil, &cmds)
	if len(cmds.Commands) != 2 {
		t.Fatalf("commands: %+v", cmds)
	}
	var cfg map[string]any
	call(t, b.user, "GET", "/api/v1/service/userAPI/get/secret/config/"+o.ID, nil, nil, &cfg)
	if cfg["operatingMode"] != "self-consumption" {
		t.Fatalf("config: %v", cfg)
	}
	// A window over 48 h is refused before VCP is asked.
	_, _, err := b.user.Do(context.Background(), "GET", "/api/v1/service/userAPI/get/secret/telemetry/"+o.ID, url.Values{"hours": {"72"}}, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "hours must be") {
		t.Fatalf("72 hours: %v", err)
	}

	// The monitoring token works directly against the adapter.
	direct := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+vcpMonitorPath+"/config?userServiceId="+o.ID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := direct(); st != http.StatusOK {
		t.Fatalf("direct call with the monitoring token: %d", st)
	}

	// Refund: stop revokes the token, the first of two hours is used.
	call(t, b.user, "POST", "/api/v1/order/userRefund/"+o.ID, nil, map[string]any{}, nil)
	b.waitFor(o.ID, market.OrderRefund)
	if _, refunds, _ := b.ledger(o.ID); refunds != market.NewDecimal(1) {
		t.Fatalf("refunded %s, want 1", refunds)
	}
	if st := direct(); st != http.StatusUnauthorized {
		t.Fatalf("direct call after the refund: %d", st)
	}
	if _, _, err := b.user.Do(context.Background(), "GET", "/api/v1/service/userAPI/get/secret/config/"+o.ID, nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("user API after the refund: %v", err)
	}

	// An unknown site fails the start (two attempts) and is refunded.
	bad := b.buy(typeID, map[string]string{"siteId": unknown}, 1, 1)
	b.mockPay(bad, 1)
	b.waitFor(bad.ID, market.OrderRefund)
	if le := b.lastError(bad.ID); !strings.Contains(le, "VCP has no site "+unknown) {
		t.Fatalf("last error %q", le)
	}

	// VCP saw exactly: config at start, through the user API and directly;
	// one telemetry and one commands read; two config reads of the unknown
	// site; nothing else.
	if c, tm, cm := count("config"), count("telemetry/meter"), count("commands"); c != 3 || tm != 1 || cm != 1 {
		t.Fatalf("VCP calls for the site: config %d, telemetry %d, commands %d", c, tm, cm)
	}
	unknownCalls := vcp.Count(func(c vcpfake.Call) bool { return c.SiteID == unknown })
	if unknownCalls != 2 || vcp.CallCount("") != 7 {
		t.Fatalf("VCP calls: unknown site %d, all %d", unknownCalls, vcp.CallCount(""))
	}
}

func TestKassa24PaymentsEndToEnd(t *testing.T) {
	const token = "kassa24-e2e-token"
	k := kassa24fake.New(kassa24fake.Config{Token: token})
	defer k.Close()
	base, a := startApp(t, func(c *serveConfig) {
		c.pay = paymentConfig{sources: []string{"kassa24"}, interval: time.Hour, timeout: 30 * time.Second}
	})
	if a.poller == nil {
		t.Fatal("--payment-sources kassa24 did not build a poller")
	}
	b := newBuyer(t, base, a)
	scope := paysource.SettingsScope("kassa24")
	b.setting(scope, "kassa24.base_url", k.URL(), false)
	b.setting(scope, "kassa24.token", token, true)
	b.setting(scope, "kassa24.rate", "0.01", false) // 100 tenge = 1 coin

	// Two orders of the bundled Container Service: 1 and 2 coins.
	typeID := b.typeOf("v-kube-service")
	opts := map[string]string{"resourceUnit": "1-CPU-2G-Mem-5G-Storage"}
	one := b.buy(typeID, opts, 1, 1)
	two := b.buy(typeID, opts, 2, 2)
	paidAt := time.Now().Add(-10 * time.Minute)
	for _, p := range []kassa24fake.Payment{
		{TransactionID: "K1", TerminalID: 7, Amount: 100_00, Date: paidAt, Account: one.ID},
		{TransactionID: "K2", TerminalID: 7, Amount: 150_00, Date: paidAt.Add(time.Minute), Account: strings.ToUpper(two.ID)},
		{TransactionID: "K3", TerminalID: 8, Amount: 50_00, Date: paidAt.Add(2 * time.Minute), Account: two.ID},
		{TransactionID: "K4", TerminalID: 8, Amount: 70_00, Date: paidAt.Add(3 * time.Minute), Account: "not-an-order"},
		{TransactionID: "K5", TerminalID: 8, Amount: 100_00, Date: paidAt.Add(4 * time.Minute), Account: one.ID, Status: "cancelled"},
	} {
		k.AddPayment(p)
	}

	ctx := context.Background()
	first, err := a.poller.PollOnce(ctx, "kassa24")
	if err != nil {
		t.Fatal(err)
	}
	if first.Paid != 3 || first.Unknown != 1 || first.Duplicates != 0 || first.Rejected != 0 {
		t.Fatalf("first poll: %+v", first)
	}
	for _, o := range []market.OrderJSON{one, two} {
		b.waitFor(o.ID, market.OrderFiled)
	}

	// A second poll re-reads the same payments (the overlap): nothing is
	// paid twice.
	second, err := a.poller.PollOnce(ctx, "kassa24")
	if err != nil {
		t.Fatal(err)
	}
	if second.Paid != 0 || second.Duplicates != 3 || second.Unknown != 1 {
		t.Fatalf("second poll: %+v", second)
	}
	for _, tc := range []struct {
		order market.OrderJSON
		refs  string
		paid  market.Decimal
	}{
		{one, "K1", market.NewDecimal(1)},
		{two, "K2,K3", market.NewDecimal(2)},
	} {
		credits, _, entries := b.ledger(tc.order.ID)
		var refs []string
		for _, e := range entries {
			if e.Source != "kassa24" {
				t.Fatalf("ledger entry from %s: %+v", e.Source, e)
			}
			refs = append(refs, e.Reference)
		}
		if credits != tc.paid || strings.Join(refs, ",") != tc.refs {
			t.Fatalf("order %s: credits %s refs %v", tc.order.ID, credits, refs)
		}
	}
	if n := k.CallCount("report", "payments"); n != 2 {
		t.Fatalf("Kassa24 saw %d report requests, want 2 (one page per poll)", n)
	}

	// Each poll is in the operator's run records.
	var runs operator.RunPage
	call(t, b.admin, "GET", "/api/v1/admin/runs", url.Values{"kind": {paysource.RunKind}}, nil, &runs)
	if len(runs.List) != 2 || !runs.List[0].OK || runs.List[0].Name != "kassa24" {
		t.Fatalf("run records: %+v", runs.List)
	}
	if strings.Contains(runs.List[0].Result+runs.List[0].Error, token) {
		t.Fatal("the Kassa24 token is in a run record")
	}
}
