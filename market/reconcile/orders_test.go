package reconcile

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
)

// at is a unix time of a China-time wall clock.
func at(layout string) int64 {
	t, err := time.ParseInLocation(VCCTimeLayout, layout, ChinaTime())
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

func TestSelectVCC(t *testing.T) {
	const day = "20250314"
	topUp := func(id, tier string, mutate func(o *market.Order)) market.Order {
		o := market.Order{ID: id, Status: market.OrderFiled, ServiceStatus: market.ServiceRunning,
			ServiceOptions: map[string]string{"accountNo": "880001", TopUpOption: tier},
			FiledTS:        at("20250314100000"), ServiceActivateTS: at("20250314100000"), ServiceActivated: true,
			UserService: map[string]any{"withdrawTime": "20250314095959", "amountCNY": tier + ".00", "status": "SUCCESS"}}
		if mutate != nil {
			mutate(&o)
		}
		return o
	}
	tests := []struct {
		name    string
		order   market.Order
		want    *Expected // nil: not selected
		skipped bool
	}{
		{name: "filed that day", order: topUp("a", "100", nil),
			want: &Expected{OrderNo: "a", Amount: "100.00", Status: StatusSuccess}},
		{name: "amount is the tier in yuan, not the coins", order: topUp("b", "50", func(o *market.Order) {
			o.Amount, o.AmountPaid = market.NewDecimal(5), market.NewDecimal(5)
		}), want: &Expected{OrderNo: "b", Amount: "50.00", Status: StatusSuccess}},
		{name: "decimal tier", order: topUp("c", "12.5", nil),
			want: &Expected{OrderNo: "c", Amount: "12.50", Status: StatusSuccess}},
		{name: "completed", order: topUp("d", "200", func(o *market.Order) {
			o.Status, o.ServiceStatus = market.OrderComplete, market.ServiceDone
		}), want: &Expected{OrderNo: "d", Amount: "200.00", Status: StatusSuccess}},
		{name: "refunded after the withdrawal, nothing paid back", order: topUp("e", "500", func(o *market.Order) {
			o.Status, o.ServiceStatus, o.ServiceActivated = market.OrderRefund, market.ServiceAbort, false
		}), want: &Expected{OrderNo: "e", Amount: "500.00", Status: StatusSuccess}},
		{name: "money paid back", order: topUp("f", "100", func(o *market.Order) {
			o.Status, o.AmountRefunded = market.OrderRefund, market.NewDecimal(10)
		})},
		{name: "never filed", order: topUp("g", "100", func(o *market.Order) {
			o.Status, o.FiledTS, o.ServiceActivateTS, o.UserService = market.OrderPaid, 0, 0, nil
		})},
		{name: "withdrawn the day before, filed after midnight", order: topUp("h", "100", func(o *market.Order) {
			o.UserService["withdrawTime"] = "20250313235959"
			o.FiledTS = at("20250314000001")
		})},
		{name: "withdrawn that day, filed the next (a retried start)", order: topUp("i", "100", func(o *market.Order) {
			o.UserService["withdrawTime"] = "20250314235900"
			o.FiledTS = at("20250315003000")
		}), want: &Expected{OrderNo: "i", Amount: "100.00", Status: StatusSuccess}},
		{name: "no withdrawTime: the filing day", order: topUp("j", "100", func(o *market.Order) {
			o.UserService = nil
		}), want: &Expected{OrderNo: "j", Amount: "100.00", Status: StatusSuccess}},
		{name: "no withdrawTime, filed the next day", order: topUp("k", "100", func(o *market.Order) {
			o.UserService = map[string]any{"withdrawTime": "garbage"}
			o.FiledTS = at("20250315000000")
		})},
		{name: "filing day in China time, not UTC", order: topUp("l", "100", func(o *market.Order) {
			// 2025-03-13 17:00 UTC is 2025-03-14 01:00 in China.
			o.UserService = nil
			o.FiledTS = time.Date(2025, 3, 13, 17, 0, 0, 0, time.UTC).Unix()
		}), want: &Expected{OrderNo: "l", Amount: "100.00", Status: StatusSuccess}},
		{name: "tier not an amount", order: topUp("m", "lots", nil), skipped: true},
		{name: "tier with three decimals", order: topUp("n", "1.005", nil), skipped: true},
		{name: "tier zero", order: topUp("o", "0", nil), skipped: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp, skipped := SelectVCC([]market.Order{tc.order}, day)
			if tc.skipped {
				if len(exp) != 0 || len(skipped) != 1 || skipped[0].OrderID != tc.order.ID {
					t.Fatalf("want skipped, got %+v, skipped %+v", exp, skipped)
				}
				return
			}
			if len(skipped) != 0 {
				t.Fatalf("skipped %+v", skipped)
			}
			if tc.want == nil {
				if len(exp) != 0 {
					t.Fatalf("selected %+v", exp)
				}
				return
			}
			tc.want.FiledTS = tc.order.FiledTS
			if len(exp) != 1 || exp[0] != *tc.want {
				t.Fatalf("got %+v, want %+v", exp, *tc.want)
			}
		})
	}
}

func TestSelectVCCOrdersByFiling(t *testing.T) {
	orders := []market.Order{
		{ID: "late", FiledTS: at("20250314180000"), ServiceOptions: map[string]string{TopUpOption: "50"}},
		{ID: "b", FiledTS: at("20250314080000"), ServiceOptions: map[string]string{TopUpOption: "50"}},
		{ID: "a", FiledTS: at("20250314080000"), ServiceOptions: map[string]string{TopUpOption: "50"}},
	}
	exp, _ := SelectVCC(orders, "20250314")
	var ids []string
	for _, e := range exp {
		ids = append(ids, e.OrderNo)
	}
	if !slices.Equal(ids, []string{"a", "b", "late"}) {
		t.Fatalf("order %v", ids)
	}
}

func TestParseFen(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "50", want: 5000},
		{in: " 100.00 ", want: 10000},
		{in: "12.5", want: 1250},
		{in: "0.01", want: 1},
		{in: "007", want: 700},
		{in: "1.", bad: true},
		{in: ".5", bad: true},
		{in: "1.234", bad: true},
		{in: "-5", bad: true},
		{in: "1e3", bad: true},
		{in: "", bad: true},
		{in: "五十", bad: true},
		{in: "99999999999999999999", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseFen(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseFen(%q) = %d, %v", tc.in, got, err)
		}
	}
	for fen, want := range map[int64]string{0: "0.00", 1: "0.01", 1250: "12.50", 100000: "1000.00", -1: "-0.01"} {
		if got := FormatFen(fen); got != want {
			t.Errorf("FormatFen(%d) = %q, want %q", fen, got, want)
		}
	}
}

// fakeMarket is a Market over fixed types and orders; it applies the
// order filter's fields the collector uses and pages newest first.
type fakeMarket struct {
	types   []market.ServiceType
	orders  []market.Order
	filters []market.OrderFilter
}

func (m *fakeMarket) Provider(_ context.Context, id string) (*market.Provider, error) {
	return &market.Provider{ID: id, Name: id}, nil
}

func (m *fakeMarket) ServiceTypes(_ context.Context, f market.ServiceTypeFilter) ([]market.ServiceType, int, error) {
	var out []market.ServiceType
	for _, t := range m.types {
		if t.Provider == f.Provider {
			out = append(out, t)
		}
	}
	return out, len(out), nil
}

func (m *fakeMarket) Orders(_ context.Context, f market.OrderFilter) ([]market.Order, int, error) {
	m.filters = append(m.filters, f)
	var all []market.Order
	for i := len(m.orders) - 1; i >= 0; i-- {
		o := m.orders[i]
		if o.ServiceID == f.ServiceID && o.ServiceActivateTS >= f.ServiceFrom && o.CreatedAt <= f.CreatedTo {
			all = append(all, o)
		}
	}
	from := min(f.Page.Offset(), len(all))
	to := min(from+f.Page.PageSize, len(all))
	return all[from:to], len(all), nil
}

func TestCollect(t *testing.T) {
	start, _ := ParseDay("20250314")
	m := &fakeMarket{types: []market.ServiceType{
		{ID: "topup", Provider: "towngas-vcc", ServiceOptions: market.Options{TopUpOption: {"50", "100"}, "accountNo": nil}},
		{ID: "other", Provider: "towngas-vcc", ServiceOptions: market.Options{"accountNo": nil}},
		{ID: "elsewhere", Provider: "someone-else", ServiceOptions: market.Options{TopUpOption: {"50"}}},
	}}
	filed := at("20250314100000")
	// More orders than a page, so the collector pages.
	for i := range orderPage + 3 {
		m.orders = append(m.orders, market.Order{ID: fmt.Sprintf("o%04d", i),
			ServiceID: "topup", CreatedAt: filed - 60, FiledTS: filed, ServiceActivateTS: filed,
			ServiceOptions: map[string]string{TopUpOption: "50"}})
	}
	m.orders = append(m.orders,
		market.Order{ID: "other-type", ServiceID: "other", CreatedAt: filed, FiledTS: filed, ServiceActivateTS: filed,
			ServiceOptions: map[string]string{TopUpOption: "50"}},
		market.Order{ID: "next-day", ServiceID: "topup", CreatedAt: filed + 86400, FiledTS: filed + 86400,
			ServiceActivateTS: filed + 86400, ServiceOptions: map[string]string{TopUpOption: "50"}})
	s := &Service{cfg: Config{Market: m}}
	exp, skipped, err := s.collect(context.Background(), "towngas-vcc", start)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != orderPage+3 || len(skipped) != 0 {
		t.Fatalf("%d expected, %d skipped", len(exp), len(skipped))
	}
	for _, e := range exp {
		if e.OrderNo == "other-type" || e.OrderNo == "next-day" {
			t.Fatalf("selected %s", e.OrderNo)
		}
	}
	if len(m.filters) != 2 {
		t.Fatalf("%d order queries, want 2 pages of the top-up type", len(m.filters))
	}
	for _, f := range m.filters {
		if f.ServiceID != "topup" || f.ServiceFrom != start.Add(-clockSkew).Unix() || f.CreatedTo != start.AddDate(0, 0, 1).Add(filingLag).Unix() {
			t.Fatalf("filter %+v", f)
		}
	}

	if _, _, err := s.collect(context.Background(), "no-topups", start); market.KindOf(err) != market.KindInvalid {
		t.Fatalf("provider without a top-up type: %v", err)
	}
}
