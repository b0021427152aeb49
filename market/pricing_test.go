package market

import (
	"testing"
	"time"
)

func TestPriceFor(t *testing.T) {
	st := &ServiceType{
		Name: "Container",
		ServiceOptions: Options{
			"unit":    {"small", "large"},
			"region":  {"hk", "sg"},
			"account": {},
		},
		DurationToPrice: []PriceSet{
			{Price: MustDecimal("1.5"), ChargingOptions: map[string]string{"unit": "small"},
				Duration: Durations{{24, MustDecimal("1")}, {168, MustDecimal("0.95")}, {720, MustDecimal("0.9")}}},
			{Price: MustDecimal("5"), ChargingOptions: map[string]string{"unit": "large"},
				Duration: Durations{{1, MustDecimal("1")}}},
			{Price: MustDecimal("6"), ChargingOptions: map[string]string{"unit": "large", "region": "sg"},
				Duration: Durations{{1, MustDecimal("1")}}},
		},
	}
	tests := []struct {
		name    string
		opts    map[string]string
		hours   int64
		want    string // amount, or "" when an error is expected
		field   string // field of the expected error
		factor  string
		ceilAmt string // the client's rounded-up amount, accepted too
	}{
		{"smallest key", map[string]string{"unit": "small"}, 24, "36", "", "1", "36"},
		{"between keys uses the lower", map[string]string{"unit": "small"}, 200, "285", "", "0.95", "285"},
		{"largest key", map[string]string{"unit": "small"}, 1000, "1350", "", "0.9", "1350"},
		{"fraction rounds up for the client", map[string]string{"unit": "small", "region": "hk"}, 171, "243.675", "", "0.95", "244"},
		{"below the smallest key", map[string]string{"unit": "small"}, 23, "", "duration", "", ""},
		{"most specific set wins", map[string]string{"unit": "large", "region": "sg"}, 2, "12", "", "1", "12"},
		{"less specific when region differs", map[string]string{"unit": "large", "region": "hk"}, 2, "10", "", "1", "10"},
		{"unknown option", map[string]string{"unit": "small", "color": "red"}, 24, "", "serviceOptions.color", "", ""},
		{"value not allowed", map[string]string{"unit": "huge"}, 24, "", "serviceOptions.unit", "", ""},
		{"free-form option", map[string]string{"unit": "large", "account": "0012-3456"}, 1, "5", "", "1", "5"},
		{"free-form option must not be empty", map[string]string{"unit": "large", "account": " "}, 1, "", "serviceOptions.account", "", ""},
		{"no matching set", map[string]string{"region": "hk"}, 24, "", "serviceOptions", "", ""},
		{"zero hours", map[string]string{"unit": "small"}, 0, "", "duration", "", ""},
		{"too many hours", map[string]string{"unit": "small"}, MaxOrderHours + 1, "", "duration", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := PriceFor(st, tt.opts, tt.hours)
			if tt.want == "" {
				e := AsError(err)
				if err == nil || e.Kind != KindInvalid || e.Field != tt.field {
					t.Fatalf("want invalid %s, got %v", tt.field, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.Amount != MustDecimal(tt.want) || q.Factor != MustDecimal(tt.factor) {
				t.Fatalf("amount %s factor %s, want %s %s", q.Amount, q.Factor, tt.want, tt.factor)
			}
			if !q.AcceptsAmount(MustDecimal(tt.want)) || !q.AcceptsAmount(MustDecimal(tt.ceilAmt)) {
				t.Fatalf("exact or rounded-up amount refused")
			}
			if q.AcceptsAmount(q.Amount+1) && MustDecimal(tt.ceilAmt) != q.Amount+1 {
				t.Fatalf("a wrong amount was accepted")
			}
		})
	}
}

func TestOrderHours(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 30, 0, 0, time.UTC)
	d := func(s string) *Decimal { v := MustDecimal(s); return &v }
	tests := []struct {
		name  string
		req   OrderRequest
		hours int64
		field string
	}{
		{"duration", OrderRequest{Duration: d("5")}, 5, ""},
		{"fractional duration", OrderRequest{Duration: d("1.5")}, 0, "duration"},
		{"expired date end of day", OrderRequest{ExpiredDate: "2026-01-02"}, 38, ""},
		{"expired unix", OrderRequest{ServiceExpiredDate: now.Add(90 * time.Minute).Unix()}, 2, ""},
		{"duration wins over date", OrderRequest{Duration: d("3"), ExpiredDate: "2026-01-05"}, 3, ""},
		{"past date", OrderRequest{ExpiredDate: "2025-12-31"}, 0, "serviceExpiredDate"},
		{"bad date", OrderRequest{ExpiredDate: "tomorrow"}, 0, "expiredDate"},
		{"nothing", OrderRequest{}, 0, "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := orderHours(tt.req, now)
			if tt.field != "" {
				if AsError(err) == nil || AsError(err).Field != tt.field {
					t.Fatalf("want error on %s, got %v", tt.field, err)
				}
				return
			}
			if err != nil || h != tt.hours {
				t.Fatalf("hours %d err %v, want %d", h, err, tt.hours)
			}
		})
	}
}

func TestRefundable(t *testing.T) {
	tests := []struct {
		name   string
		o      Order
		typeOK bool
		want   bool
	}{
		{"running and paid", Order{Status: OrderFiled, ServiceStatus: ServiceRunning, AmountPaid: 5}, true, true},
		{"type not refundable", Order{Status: OrderFiled, ServiceStatus: ServiceRunning, AmountPaid: 5}, false, false},
		{"pending service, paid", Order{Status: OrderPaid, ServiceStatus: ServicePending, AmountPaid: 5}, true, true},
		{"stopped", Order{Status: OrderFiled, ServiceStatus: ServiceStop, AmountPaid: 5}, true, true},
		{"done", Order{Status: OrderComplete, ServiceStatus: ServiceDone, AmountPaid: 5}, true, false},
		{"already refunded", Order{Status: OrderRefund, ServiceStatus: ServiceAbort, AmountPaid: 5, AmountRefunded: 5}, true, false},
		{"nothing paid", Order{Status: OrderPending, ServiceStatus: ServicePending}, true, false},
	}
	for _, tt := range tests {
		if got := tt.o.Refundable(tt.typeOK); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}
