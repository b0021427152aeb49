package paysource_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/paysource"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts"
	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
	"github.com/vmarket/vmarket/scripts/luafixture"
)

// at is a time of 2 Jan 2025 in Kassa24's zone (UTC+5).
func at(h, m int) time.Time { return time.Date(2025, 1, 2, h, m, 0, 0, kassa24fake.Zone()) }

// noon is the poll time of the tests.
func noon() time.Time { return at(12, 0) }

// newFixture starts the fixture of this folder's Lua tests (named by
// luatest.json: kassa24-paysource): a Kassa24 fake holding the tests'
// payments, its token in the settings.
func newFixture(t *testing.T) *luafixture.Fixture {
	t.Helper()
	fx, err := luafixture.For(t.Context(), ".")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fx.Close)
	return fx
}

// TestKassa24ScriptLua runs kassa24_test.lua against the fake. The script
// the Lua tests load is the folder's kassa24.lua, the file the source
// embeds.
func TestKassa24ScriptLua(t *testing.T) {
	fx := newFixture(t)
	src, err := os.ReadFile("kassa24.lua")
	if err != nil || string(src) != paysource.Kassa24().Script {
		t.Fatalf("kassa24.lua is not the embedded script (read error %v)", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rep, err := fx.Run(ctx, luatest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Write(&buf, testing.Verbose())
	if !rep.OK() {
		t.Fatalf("Lua tests failed:\n%s", buf.String())
	}
	t.Logf("%s", buf.String())
}

// payer is an in-memory ledger with market.Orders.Pay's rules that
// matter here: (source, reference) is unique, an unknown order is an
// invalid orderId wrapping a not-found.
type payer struct {
	mu     sync.Mutex
	orders map[string]market.Decimal // order → paid
	refs   map[string]market.Decimal // source/reference → amount
	fail   error
}

func newPayer(orders ...string) *payer {
	p := &payer{orders: map[string]market.Decimal{}, refs: map[string]market.Decimal{}}
	for _, o := range orders {
		p.orders[o] = 0
	}
	return p
}

func (p *payer) Pay(_ context.Context, r market.PaymentRequest) (*market.PaymentResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	paid, ok := p.orders[r.OrderID]
	if !ok {
		return nil, &market.Error{Kind: market.KindInvalid, Field: "orderId", Message: "order not found", Err: market.NotFound("order", r.OrderID)}
	}
	key := r.Source + "/" + r.Reference
	if prev, ok := p.refs[key]; ok {
		if prev != r.Amount {
			return nil, market.Errorf(market.KindConflict, "payment reference %q was already used for a different payment", r.Reference)
		}
		return &market.PaymentResult{Order: &market.Order{ID: r.OrderID, AmountPaid: paid}, Duplicate: true}, nil
	}
	p.refs[key] = r.Amount
	p.orders[r.OrderID] = paid + r.Amount
	return &market.PaymentResult{Order: &market.Order{ID: r.OrderID, AmountPaid: paid + r.Amount, Status: market.OrderPaid}}, nil
}

func (p *payer) paid(order string) market.Decimal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders[order]
}

// providers is a catalog with the given provider names.
type providers map[string]bool

func (ps providers) Provider(_ context.Context, name string) (*market.Provider, error) {
	if ps[name] {
		return &market.Provider{Name: name}, nil
	}
	return nil, market.NotFound("provider", name)
}

// settings are the settings of one scope.
type settings struct {
	scope  string
	values map[string]string
}

func (s settings) ScriptSettings(scope string) (map[string]string, []string) {
	if scope != s.scope {
		return nil, nil
	}
	return s.values, []string{"kassa24.token"}
}

type setup struct {
	fake   *kassa24fake.Server
	token  string
	payer  *payer
	kv     *runtime.MemoryKV
	poller *paysource.Poller
	now    time.Time
}

func newSetup(t *testing.T, values map[string]string, catalog providers) *setup {
	t.Helper()
	fx := newFixture(t)
	k := fx.Fakes.Kassa24
	s := &setup{fake: k, token: fx.Settings["kassa24.token"], payer: newPayer("order-a", "order-b", "order-c"), kv: runtime.NewMemoryKV(), now: noon()}
	eng, err := runtime.NewEngine(runtime.Options{Resolver: runtime.FSResolver(scripts.FS()), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	all := map[string]string{"kassa24.base_url": k.URL(), "kassa24.token": s.token, "kassa24.rate": "0.0025", "kassa24.backoff": "0.01"}
	for key, v := range values {
		if v == "" {
			delete(all, key)
		} else {
			all[key] = v
		}
	}
	s.poller, err = paysource.New(paysource.Config{
		Engine: eng, Payer: s.payer, KV: s.kv, Providers: catalog,
		Settings: settings{scope: paysource.SettingsScope("kassa24"), values: all},
		Now:      func() time.Time { return s.now },
	}, paysource.Kassa24())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *setup) cursor(t *testing.T) string {
	t.Helper()
	v, _, err := s.kv.Get(context.Background(), paysource.KVScope, "cursor:kassa24")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func statuses(p *paysource.Poll) map[string]string {
	out := map[string]string{}
	for _, o := range p.Payments {
		out[o.Reference] = o.Status
	}
	return out
}

func TestPollConfirmsOnce(t *testing.T) {
	s := newSetup(t, nil, providers{})
	ctx := context.Background()
	first, err := s.poller.PollOnce(ctx, "kassa24")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"T1": paysource.StatusPaid, "T2": paysource.StatusPaid, "T4": paysource.StatusPaid}
	if got := statuses(first); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first poll: %v, want %v", got, want)
	}
	// 1500.00 KZT × 0.0025 = 3.75 coins; 250.50 × 0.0025 = 0.62625.
	for order, want := range map[string]string{"order-a": "3.75", "order-b": "0.62625", "order-c": "0.025"} {
		if got := s.payer.paid(order); got != market.MustDecimal(want) {
			t.Errorf("%s paid %s, want %s", order, got, want)
		}
	}
	if c := s.cursor(t); c != fmt.Sprint(noon().Unix()) {
		t.Fatalf("cursor %q", c)
	}

	// The same period again (the clock did not move): nothing paid twice.
	again, err := s.poller.PollOnce(ctx, "kassa24")
	if err != nil {
		t.Fatal(err)
	}
	if again.Paid != 0 || again.Duplicates != 0 {
		t.Fatalf("second poll from the cursor: %+v", again)
	}
	// A late payment inside the overlap, and a re-read of an old one.
	s.fake.AddPayment(kassa24fake.Payment{TransactionID: "T6", TerminalID: 7, Amount: 400_00, Date: at(11, 50), Account: "order-a"})
	s.fake.AddPayment(kassa24fake.Payment{TransactionID: "T7", TerminalID: 7, Amount: 100_00, Date: at(12, 10), Account: "order-nobody"})
	s.now = noon().Add(15 * time.Minute)
	third, err := s.poller.PollOnce(ctx, "kassa24")
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"T6": paysource.StatusPaid, "T7": paysource.StatusUnknown}
	if got := statuses(third); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("third poll: %v, want %v", got, want)
	}
	if got := s.payer.paid("order-a"); got != market.MustDecimal("4.75") {
		t.Fatalf("order-a paid %s", got)
	}
	if third.Cursor != fmt.Sprint(noon().Unix()) || s.cursor(t) != fmt.Sprint(s.now.Unix()) {
		t.Fatalf("cursor moved from %q to %q", third.Cursor, s.cursor(t))
	}
	// A minute later the overlap re-reads both: nothing is paid twice.
	s.now = s.now.Add(time.Minute)
	fourth, err := s.poller.PollOnce(ctx, "kassa24")
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"T6": paysource.StatusDuplicate, "T7": paysource.StatusUnknown}
	if got := statuses(fourth); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fourth poll: %v, want %v", got, want)
	}
	if got := s.payer.paid("order-a"); got != market.MustDecimal("4.75") {
		t.Fatalf("order-a paid %s after a re-read", got)
	}
}

func TestPollFailures(t *testing.T) {
	tests := []struct {
		name     string
		values   map[string]string
		catalog  providers
		prepare  func(s *setup)
		wantErr  string
		requests int // report calls made
	}{
		{name: "no rate", values: map[string]string{"kassa24.rate": ""}, wantErr: "kassa24.rate", requests: 0},
		{name: "bad rate", values: map[string]string{"kassa24.rate": "-1"}, wantErr: "positive decimal", requests: 0},
		{name: "provider squatting the scope", catalog: providers{"paysource:kassa24": true}, wantErr: "would see this source's settings", requests: 0},
		{name: "token refused", prepare: func(s *setup) { s.fake.Faults.RejectAuthNext(1) }, wantErr: "401", requests: 1},
		{name: "portal down", values: map[string]string{"kassa24.retries": "1"}, prepare: func(s *setup) { s.fake.Faults.FailNext(5, http.StatusBadGateway) }, wantErr: "500", requests: 2},
		{name: "ledger down", prepare: func(s *setup) { s.payer.fail = errors.New("disk full") }, wantErr: "disk full", requests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, tc.values, tc.catalog)
			if tc.prepare != nil {
				tc.prepare(s)
			}
			_, err := s.poller.PollOnce(context.Background(), "kassa24")
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if n := s.fake.CallCount("report", "payments"); n != tc.requests {
				t.Fatalf("%d report requests, want %d", n, tc.requests)
			}
			if c := s.cursor(t); c != "" {
				t.Fatalf("cursor stored after a failed poll: %q", c)
			}
		})
	}
}

func TestRunPollsAtOnceAndStops(t *testing.T) {
	s := newSetup(t, nil, providers{})
	polls := make(chan paysource.Record, 1)
	eng, _ := runtime.NewEngine(runtime.Options{Resolver: runtime.FSResolver(scripts.FS()), Logger: slog.New(slog.DiscardHandler)})
	defer eng.Close()
	p, err := paysource.New(paysource.Config{
		Engine: eng, Payer: s.payer, KV: s.kv, Providers: providers{}, Interval: time.Hour,
		Settings: settings{scope: "paysource:kassa24", values: map[string]string{"kassa24.base_url": s.fake.URL(), "kassa24.token": s.token, "kassa24.rate": "1"}},
		Now:      func() time.Time { return noon() },
		Record: func(r paysource.Record) {
			select {
			case polls <- r:
			default:
			}
		},
	}, paysource.Kassa24())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case r := <-polls:
		if r.Err != nil || r.Poll == nil || r.Poll.Paid != 3 || r.Result == nil {
			t.Fatalf("first poll: %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no poll at start")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestNew(t *testing.T) {
	eng, _ := runtime.NewEngine(runtime.Options{})
	defer eng.Close()
	base := paysource.Config{Engine: eng, Payer: newPayer(), KV: runtime.NewMemoryKV(), Providers: providers{}}
	tests := []struct {
		name    string
		cfg     paysource.Config
		sources []paysource.Source
		wantErr bool
	}{
		{name: "kassa24", cfg: base, sources: []paysource.Source{paysource.Kassa24()}},
		{name: "no engine", cfg: paysource.Config{Payer: newPayer()}, wantErr: true},
		{name: "twice", cfg: base, sources: []paysource.Source{paysource.Kassa24(), paysource.Kassa24()}, wantErr: true},
		{name: "bad script", cfg: base, sources: []paysource.Source{{Name: "x", Script: "return {"}}, wantErr: true},
		{name: "bad name", cfg: base, sources: []paysource.Source{{Name: "a:b", Script: "return {}"}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := paysource.New(tc.cfg, tc.sources...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	if _, ok := paysource.Named("kassa24"); !ok {
		t.Fatal("kassa24 is not a named source")
	}
	if _, ok := paysource.Named("paypal"); ok {
		t.Fatal("unknown source found")
	}
}
