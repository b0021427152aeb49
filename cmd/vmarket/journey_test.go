package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/wallet"
)

// startApp runs a full vmarket (newApp + worker + API) on 127.0.0.1 in a
// temporary data directory and returns its base URL.
func startApp(t *testing.T, mutate func(*serveConfig)) (string, *app) {
	t.Helper()
	return startAppLog(t, testLogger(t), mutate)
}

// startAppLog is startApp with a given logger (benchmarks discard logs).
func startAppLog(t testing.TB, log *slog.Logger, mutate func(*serveConfig)) (string, *app) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := serveConfig{
		addr: ln.Addr().String(), dataDir: t.TempDir(), network: "mainnet", sigWindow: 300 * time.Second,
		mockPayments: true, demoProvider: true, publicURL: base, scriptTime: 5 * time.Second,
		luaMin: 1, luaMax: 4, workers: 4, maxAttempts: 3, grace: time.Second,
		jobLease: time.Minute, hour: time.Hour, privateBack: true,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { a.worker.Run(ctx); done <- struct{}{} }()
	go func() { a.api.Serve(ctx, ln, time.Second); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		a.close()
	})
	return base, a
}

// call does a request and decodes the JSON answer into out.
func call(t *testing.T, c *client.Client, method, path string, q url.Values, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, _, err := c.Do(ctx, method, path, q, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// TestJourney walks the whole user journey against the bundled Container
// Service and its demo backend: browse, buy, mock-pay, see the running
// service, read and open the secret, call the user APIs, refund.
func TestJourney(t *testing.T) {
	base, _ := startApp(t, nil)
	w, err := wallet.Generate(wallet.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := client.New(base, client.Options{Wallet: w})
	anon, _ := client.New(base, client.Options{})
	lister, _ := client.New(base, client.Options{Wallet: w, Unsigned: true})

	var types struct {
		List []market.ServiceType `json:"list"`
	}
	call(t, anon, "GET", "/api/v1/service/type", url.Values{"provider": {"v-kube-service"}, "category": {"Container-Service"}}, nil, &types)
	if len(types.List) != 1 {
		t.Fatalf("want the bundled type, got %d", len(types.List))
	}
	st := types.List[0]

	var order market.OrderJSON
	call(t, user, "POST", "/api/v1/order/add", nil, map[string]any{
		"serviceID": st.ID, "serviceOptions": map[string]string{"resourceUnit": "2-CPU-4G-Mem-10G-Storage", "region": "Singapore"},
		"duration": 2, "amount": 4,
	}, &order)
	if order.Status != market.OrderPending || order.Amount != market.NewDecimal(4) {
		t.Fatalf("new order: %+v", order)
	}

	call(t, anon, "POST", "/api/v1/order/mock", nil, map[string]any{
		"orderId": order.ID, "providerAddr": order.Recipient, "pubKey": w.PublicKey().String(), "amt": 4 * 100000000,
	}, nil)

	var filed market.OrderJSON
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		call(t, user, "GET", "/api/v1/order/id/"+order.ID, nil, nil, &filed)
		if filed.Status == market.OrderFiled {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if filed.Status != market.OrderFiled || filed.ServiceStatus != market.ServiceRunning || !filed.ServiceActivated {
		t.Fatalf("order not filed: %+v", filed)
	}
	if filed.EndAt != filed.ServiceActivateTS+2*3600 {
		t.Errorf("endAt %d, activated %d", filed.EndAt, filed.ServiceActivateTS)
	}

	var list struct {
		List       []market.OrderJSON `json:"list"`
		Pagination market.Pagination  `json:"pagination"`
	}
	call(t, lister, "GET", "/api/v1/order", url.Values{"statuses[]": {"OrderFiled"}, "serviceActivated": {"True"}}, nil, &list)
	if list.Pagination.Total != 1 || list.List[0].ID != order.ID || list.List[0].Magic != "" {
		t.Fatalf("order list: %+v", list)
	}

	var us struct {
		market.OrderJSON
		UserService map[string]any `json:"userService"`
	}
	call(t, user, "GET", "/api/v1/userService/"+order.ID, nil, nil, &us)
	secret, err := wallet.OpenSecret(us.Magic, w.Keys)
	if err != nil {
		t.Fatalf("open secret: %v", err)
	}
	if len(secret) < 10 || us.UserService["namespace"] == "" {
		t.Fatalf("secret %q, user service %v", secret, us.UserService)
	}

	var status map[string]any
	call(t, user, "GET", "/api/v1/service/userAPI/get/normal/status/"+order.ID, nil, nil, &status)
	if status["state"] != "Active" {
		t.Fatalf("status API: %v", status)
	}
	var deployed map[string]any
	call(t, user, "GET", "/api/v1/service/userAPI/get/secret/deploy/"+order.ID, url.Values{"image": {"redis:7"}}, nil, &deployed)
	if deployed["deployed"] != "redis:7" {
		t.Fatalf("secret API: %v", deployed)
	}

	var refunded market.OrderJSON
	call(t, user, "POST", "/api/v1/order/userRefund/"+order.ID, nil, map[string]any{}, &refunded)
	if refunded.Status != market.OrderRefund || refunded.ServiceStatus != market.ServiceAbort {
		t.Fatalf("refund: %+v", refunded)
	}
	var payments []market.Payment
	call(t, user, "GET", "/api/v1/order/id/"+order.ID+"/payments", nil, nil, &payments)
	var credit, refund market.Decimal
	for _, p := range payments {
		if p.Kind == market.PaymentCredit {
			credit += p.Amount
		} else {
			refund += p.Amount
		}
	}
	// Two hours bought, the first started: one unused hour of 4 is 2.
	if credit != market.NewDecimal(4) || refund != market.NewDecimal(2) {
		t.Fatalf("ledger: credit %s refund %s (%+v)", credit, refund, payments)
	}
	// Asking again changes nothing.
	var again market.OrderJSON
	call(t, user, "POST", "/api/v1/order/userRefund/"+order.ID, nil, map[string]any{}, &again)
	if again.Status != market.OrderRefund || *again.AmountRefunded != market.NewDecimal(2) {
		t.Fatalf("second refund: %+v", again)
	}
}

// filedOrder buys the bundled Container Service for w, mock-pays it and
// waits until it is filed.
func filedOrder(t *testing.T, base string, w *wallet.Wallet) market.OrderJSON {
	t.Helper()
	user, _ := client.New(base, client.Options{Wallet: w})
	anon, _ := client.New(base, client.Options{})
	var types struct {
		List []market.ServiceType `json:"list"`
	}
	call(t, anon, "GET", "/api/v1/service/type", url.Values{"provider": {"v-kube-service"}}, nil, &types)
	var o market.OrderJSON
	call(t, user, "POST", "/api/v1/order/add", nil, map[string]any{
		"serviceID": types.List[0].ID, "serviceOptions": map[string]string{"resourceUnit": "1-CPU-2G-Mem-5G-Storage"},
		"duration": 1, "amount": 1,
	}, &o)
	call(t, anon, "POST", "/api/v1/order/mock", nil, map[string]any{
		"orderId": o.ID, "providerAddr": o.Recipient, "pubKey": w.PublicKey().String(), "amt": 100000000,
	}, nil)
	deadline := time.Now().Add(15 * time.Second)
	for o.Status != market.OrderFiled {
		if time.Now().After(deadline) {
			t.Fatalf("order not filed: %+v", o)
		}
		time.Sleep(50 * time.Millisecond)
		call(t, user, "GET", "/api/v1/order/id/"+o.ID, nil, nil, &o)
	}
	return o
}

// TestPrivateBackendsRefused: with --allow-private-backends=false, user API
// calls to a provider on loopback are refused with a 502, not made.
func TestPrivateBackendsRefused(t *testing.T) {
	base, _ := startApp(t, func(c *serveConfig) { c.privateBack = false })
	w, _ := wallet.Generate(wallet.Mainnet)
	o := filedOrder(t, base, w)
	user, _ := client.New(base, client.Options{Wallet: w})
	_, status, err := user.Do(context.Background(), "GET", "/api/v1/service/userAPI/get/normal/status/"+o.ID, nil, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || status != 502 || !strings.Contains(ae.Message, "private address") {
		t.Fatalf("want 502 private address, got %d %v", status, err)
	}
}
