package lifecycle_test

import (
	"context"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/lifecycle"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/wallet"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// clock is a test clock the worker and the order service share.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a store, a real engine, the order service and a worker over
// them, with one provider and one type whose scripts the test chooses.
type world struct {
	t      *testing.T
	db     *sqlite.DB
	clock  *clock
	orders *market.Orders
	worker *lifecycle.Worker
	buyer  *wallet.Wallet
	typeID string
}

func newWorld(t *testing.T, refundable bool, start, stop, refund string) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vmarket.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	eng, err := runtime.NewEngine(runtime.Options{MinStates: 1, MaxStates: 2, KV: db.KV()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cat := market.NewCatalog(db, luascript.Compiler{}, market.WithClock(clk.Now))
	enc := func(s string) market.Script { return market.Script{Encoded: url.QueryEscape(s)} }
	buyer, _ := wallet.Generate(wallet.Mainnet)
	res, err := cat.ApplyTemplate(ctx, market.Caller{OperatorRole: market.RoleAdmin}, &market.Template{
		Provider: market.Provider{Name: "p", WalletAddress: buyer.Address(), APIHost: "http://127.0.0.1:1"},
		Categories: []market.TemplateCategory{{Category: market.Category{Name: "c"}, ServiceTypes: []market.ServiceType{{
			Name: "t", Refundable: refundable,
			DurationToPrice: []market.PriceSet{{Price: market.NewDecimal(2), Duration: market.Durations{{Hours: 1, Factor: market.NewDecimal(1)}}}},
			ServiceAPI:      market.ServiceAPI{Start: enc(start), Stop: enc(stop), Refund: enc(refund)},
		}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, db: db, clock: clk, buyer: buyer, typeID: res.ServiceTypes[0].ID}
	w.orders = market.NewOrders(db, market.WithOrdersClock(clk.Now))
	w.worker = lifecycle.New(lifecycle.Config{
		Store: db, Runner: &luascript.Runner{Engine: eng}, Seal: wallet.SealSecret, Now: clk.Now,
		MaxAttempts: 3, BackoffBase: time.Minute, BackoffMax: 10 * time.Minute, Lease: time.Hour,
	})
	return w
}

// paidOrder creates and fully pays an order of hours hours.
func (w *world) paidOrder(hours int64) *market.Order {
	w.t.Helper()
	ctx := context.Background()
	d := market.NewDecimal(hours)
	amount, _ := market.NewDecimal(2).MulInt(hours)
	o, err := w.orders.Create(ctx, market.Caller{Address: w.buyer.Address()}, w.buyer.PublicKey().String(),
		market.OrderRequest{ServiceID: w.typeID, Duration: &d, Amount: amount})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.orders.Pay(ctx, market.PaymentRequest{OrderID: o.ID, Amount: amount, Source: "test", Reference: o.ID}); err != nil {
		w.t.Fatal(err)
	}
	return o
}

// drain runs due jobs, then moves the clock by step, times times.
func (w *world) drain(times int, step time.Duration) {
	for i := 0; i < times; i++ {
		if _, err := w.worker.RunOnce(context.Background()); err != nil {
			w.t.Fatal(err)
		}
		w.clock.add(step)
	}
}

func (w *world) order(id string) *market.Order {
	w.t.Helper()
	o, err := w.db.Order(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func (w *world) ledger(id string) (credit, refund market.Decimal) {
	ps, err := w.db.Payments(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, p := range ps {
		if p.Kind == market.PaymentCredit {
			credit += p.Amount
		} else {
			refund += p.Amount
		}
	}
	return credit, refund
}

func TestLifecycle(t *testing.T) {
	const ok = `return {secret = "s3cret", data = {n = 1}}`
	const fails = `error("backend down")`
	tests := []struct {
		name                string
		refundable          bool
		start, stop, refund string
		hours               int64
		steps               int
		step                time.Duration
		askRefund           bool
		wantStatus          market.OrderStatus
		wantService         market.ServiceStatus
		wantRefund          market.Decimal
		wantError           bool
	}{
		{"start then stop at endAt", true, ok, `return {}`, "", 2, 4, time.Hour, false,
			market.OrderComplete, market.ServiceDone, 0, false},
		{"start fails for good: parked and refunded", true, fails, "", "", 1, 5, 10 * time.Minute, false,
			market.OrderRefund, market.ServiceAbort, market.NewDecimal(2), true},
		{"start fails for good, not refundable: parked, no refund", false, fails, "", "", 1, 5, 10 * time.Minute, false,
			market.OrderPaid, market.ServiceAbort, 0, true},
		{"refund script decides", true, ok, `return {}`, `return {amount = 0.5}`, 3, 1, time.Minute, true,
			market.OrderRefund, market.ServiceAbort, market.MustDecimal("0.5"), false},
		{"refund script asks too much: capped", true, ok, "", `return {amount = 1000}`, 3, 1, time.Minute, true,
			market.OrderRefund, market.ServiceAbort, market.NewDecimal(6), false},
		{"default refund: unused whole hours", true, ok, "", "", 3, 1, time.Minute, true,
			market.OrderRefund, market.ServiceAbort, market.NewDecimal(4), false},
		{"refund script fails for good: default amount", true, ok, "", fails, 3, 6, 10 * time.Minute, true,
			market.OrderRefund, market.ServiceAbort, market.NewDecimal(4), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.refundable, tt.start, tt.stop, tt.refund)
			o := w.paidOrder(tt.hours)
			w.drain(1, time.Minute)
			if tt.askRefund {
				if _, err := w.orders.RequestRefund(context.Background(), market.Caller{Address: w.buyer.Address()}, o.ID); err != nil {
					t.Fatal(err)
				}
			}
			w.drain(tt.steps, tt.step)
			got := w.order(o.ID)
			if got.Status != tt.wantStatus || got.ServiceStatus != tt.wantService {
				t.Fatalf("order %s/%s (error %q), want %s/%s", got.Status, got.ServiceStatus, got.LastError, tt.wantStatus, tt.wantService)
			}
			credit, refund := w.ledger(o.ID)
			if credit != got.AmountPaid || refund != got.AmountRefunded || refund != tt.wantRefund {
				t.Fatalf("ledger credit %s refund %s; order paid %s refunded %s; want refund %s", credit, refund, got.AmountPaid, got.AmountRefunded, tt.wantRefund)
			}
			if (got.LastError != "") != tt.wantError {
				t.Fatalf("last error %q", got.LastError)
			}
			if depth, _ := w.db.QueueDepth(context.Background(), w.clock.Now().Add(1000*time.Hour)); depth != 0 {
				t.Fatalf("%d jobs left queued", depth)
			}
		})
	}
}

// TestSecretSealed: the start script's secret is stored only sealed to the
// buyer's key.
func TestSecretSealed(t *testing.T) {
	w := newWorld(t, true, `return {secret = "open sesame"}`, "", "")
	o := w.paidOrder(1)
	w.drain(1, time.Second)
	got := w.order(o.ID)
	if got.Status != market.OrderFiled || got.Magic == "" || got.Magic == "open sesame" {
		t.Fatalf("order %s magic %q", got.Status, got.Magic)
	}
	plain, err := wallet.OpenSecret(got.Magic, w.buyer.Keys)
	if err != nil || string(plain) != "open sesame" {
		t.Fatalf("opened %q, %v", plain, err)
	}
}
