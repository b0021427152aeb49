package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/wallet"
)

// trivialTemplate is a provider with one type whose scripts do nothing
// but return a secret.
func trivialTemplate(b testing.TB, a *app, wallet string) string {
	b.Helper()
	t := &market.Template{
		Provider: market.Provider{Name: "bench", WalletAddress: wallet, APIHost: "http://127.0.0.1:1"},
		Categories: []market.TemplateCategory{{
			Category: market.Category{Name: "Bench"},
			ServiceTypes: []market.ServiceType{{
				Name: "Trivial", Refundable: true,
				DurationToPrice: []market.PriceSet{{Price: market.NewDecimal(1), Duration: market.Durations{{Hours: 1, Factor: market.NewDecimal(1)}}}},
				ServiceAPI: market.ServiceAPI{
					Start: market.Script{Encoded: "return%20%7Bsecret%20%3D%20%22s%22%7D"}, // return {secret = "s"}
					Stop:  market.Script{Encoded: "return%20%7B%7D"},
				},
			}},
		}},
	}
	res, err := a.catalog.ApplyTemplate(context.Background(), market.Caller{OperatorRole: market.RoleAdmin}, t)
	if err != nil {
		b.Fatal(err)
	}
	return res.ServiceTypes[0].ID
}

// waitFiled waits until n orders are filed.
func waitFiled(b *testing.B, a *app, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, total, err := a.db.Orders(context.Background(), market.OrderFilter{Statuses: []market.OrderStatus{market.OrderFiled}, Page: market.Page{Current: 1, PageSize: 1}})
		if err != nil {
			b.Fatal(err)
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d orders filed", total, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkLifecycleDomain measures orders from creation to OrderFiled
// through the order service and the lifecycle worker (trivial scripts,
// real SQLite, no HTTP): the orders/s metric is the throughput.
func BenchmarkLifecycleDomain(b *testing.B) {
	_, a := startAppLog(b, slog.New(slog.DiscardHandler), func(c *serveConfig) { c.workers = 8; c.luaMax = 8 })
	w, _ := wallet.Generate(wallet.Mainnet)
	typeID := trivialTemplate(b, a, w.Address())
	caller := market.Caller{Address: w.Address()}
	pub := w.PublicKey().String()
	ctx := context.Background()
	runOrders(b, a, func() error {
		o, err := a.orders.Create(ctx, caller, pub, market.OrderRequest{ServiceID: typeID, Duration: ptr(market.NewDecimal(1)), Amount: market.NewDecimal(1)})
		if err != nil {
			return err
		}
		_, err = a.orders.Pay(ctx, market.PaymentRequest{OrderID: o.ID, Amount: o.Amount, Source: "bench", Reference: o.ID})
		return err
	})
	reportDBSize(b, a, b.N)
}

// BenchmarkLifecycleHTTP measures the same over the wire: signed
// POST /api/v1/order/add and POST /api/v1/order/mock from 4 client
// goroutines (which sign in the same process, on the same 2 cores).
func BenchmarkLifecycleHTTP(b *testing.B) {
	base, a := startAppLog(b, slog.New(slog.DiscardHandler), func(c *serveConfig) { c.workers = 8; c.luaMax = 8 })
	w, _ := wallet.Generate(wallet.Mainnet)
	typeID := trivialTemplate(b, a, w.Address())
	user, _ := client.New(base, client.Options{Wallet: w})
	pub := w.PublicKey().String()
	ctx := context.Background()
	runOrders(b, a, func() error {
		body, _, err := user.Do(ctx, "POST", "/api/v1/order/add", nil, map[string]any{"serviceID": typeID, "duration": 1, "amount": 1})
		if err != nil {
			return err
		}
		var o market.OrderJSON
		if err := json.Unmarshal(body, &o); err != nil {
			return err
		}
		_, _, err = user.Do(ctx, "POST", "/api/v1/order/mock", nil, map[string]any{"orderId": o.ID, "providerAddr": o.Recipient, "pubKey": pub, "amt": 100000000})
		return err
	})
}

// runOrders places b.N orders with place from 4 goroutines, waits until
// all are filed, and reports the throughput as orders/s.
func runOrders(b *testing.B, a *app, place func() error) {
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if err := place(); err != nil {
					b.Error(err) // keep draining so the sender never blocks
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	waitFiled(b, a, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "orders/s")
}

// reportDBSize reports the database bytes per order (file plus WAL).
func reportDBSize(b *testing.B, a *app, n int) {
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(a.db.Path() + suffix); err == nil {
			size += st.Size()
		}
	}
	if n > 0 {
		b.ReportMetric(float64(size)/float64(n), "dbbytes/order")
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "database %d bytes for %d orders\n", size, n)
	}
}

func ptr[T any](v T) *T { return &v }
